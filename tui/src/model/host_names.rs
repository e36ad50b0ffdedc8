//! Remote host names on demand (a dashboard toggle): reverse lookups (`getnameinfo`, which
//! reads /etc/hosts and DNS as the system is configured) on a thread of their own, cached, so
//! a frame never waits for a name: until its answer arrives an address is shown as itself.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
};

use crossbeam_channel::{Sender, TrySendError};

/// Addresses waiting for the resolver at most; more are asked again on a later frame.
const QUEUE: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Lookup {
    /// Asked, no answer yet.
    Pending,
    /// The address has this name.
    Name(String),
    /// No name (or the lookup failed): shown as the address.
    None,
}

/// The resolver and its cache. Cheap to ask: [`HostNames::name`] only reads the cache and
/// queues what it has not seen.
#[derive(Debug)]
pub struct HostNames {
    cache: Arc<Mutex<HashMap<IpAddr, Lookup>>>,
    requests: Sender<IpAddr>,
}

impl Default for HostNames {
    fn default() -> Self {
        HostNames::start(reverse_lookup)
    }
}

impl HostNames {
    /// A resolver thread using `lookup` (the system's reverse lookup in the product).
    pub fn start(lookup: fn(IpAddr) -> Option<String>) -> HostNames {
        let cache = Arc::new(Mutex::new(HashMap::new()));
        let (requests, queue) = crossbeam_channel::bounded::<IpAddr>(QUEUE);
        let answers = Arc::clone(&cache);
        // If the thread cannot start, names simply never arrive: addresses stay shown.
        let _ = std::thread::Builder::new()
            .name("tui-host-names".into())
            .spawn(move || {
                for address in queue {
                    let answer = lookup(address).map_or(Lookup::None, Lookup::Name);
                    if let Ok(mut cache) = answers.lock() {
                        cache.insert(address, answer);
                    }
                }
            });
        HostNames { cache, requests }
    }

    /// The name of `address` when known; `None` while it is being looked up, when it has no
    /// name, or for the unspecified address. Never blocks on the lookup.
    pub fn name(&self, address: IpAddr) -> Option<String> {
        if address.is_unspecified() {
            return None;
        }
        let mut cache = self.cache.lock().ok()?;
        match cache.get(&address) {
            Some(Lookup::Name(name)) => Some(name.clone()),
            Some(Lookup::Pending | Lookup::None) => None,
            None => {
                match self.requests.try_send(address) {
                    Ok(()) => {
                        cache.insert(address, Lookup::Pending);
                    }
                    // Full: ask again on a later frame. Disconnected: no resolver.
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {}
                }
                None
            }
        }
    }
}

/// The system's reverse lookup of `address` (`getnameinfo` with `NI_NAMEREQD`).
pub fn reverse_lookup(address: IpAddr) -> Option<String> {
    let socket = sockaddr_bytes(SocketAddr::new(address, 0));
    let mut host = [0 as libc::c_char; libc::NI_MAXHOST as usize];
    // SAFETY: `socket` is a valid sockaddr of the given length; `host` is writable for its
    // length; no service buffer is asked for.
    let status = unsafe {
        libc::getnameinfo(
            socket.0.as_ptr().cast(),
            socket.1,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if status != 0 {
        return None;
    }
    // SAFETY: getnameinfo wrote a NUL-terminated string into `host`.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// The bytes of a `sockaddr_in` / `sockaddr_in6` for `address`, and their length.
fn sockaddr_bytes(address: SocketAddr) -> (Vec<u8>, libc::socklen_t) {
    match address {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
            let mut raw: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            raw.sin_family = libc::AF_INET as libc::sa_family_t;
            raw.sin_port = v4.port().to_be();
            raw.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            as_bytes(&raw)
        }
        SocketAddr::V6(v6) => {
            // SAFETY: sockaddr_in6 is plain data; all-zero is a valid value.
            let mut raw: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            raw.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            raw.sin6_port = v6.port().to_be();
            raw.sin6_addr.s6_addr = v6.ip().octets();
            as_bytes(&raw)
        }
    }
}

fn as_bytes<T>(value: &T) -> (Vec<u8>, libc::socklen_t) {
    let len = std::mem::size_of::<T>();
    // SAFETY: `value` is a live T of `len` bytes, read as bytes (sockaddr types have no
    // padding that matters to the kernel; it is copied, not interpreted here).
    let bytes = unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), len) };
    (bytes.to_vec(), len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn fake(address: IpAddr) -> Option<String> {
        std::thread::sleep(Duration::from_millis(20));
        (address == IpAddr::from([10, 0, 0, 7])).then(|| "db.example".to_string())
    }

    #[test]
    fn names_arrive_later_and_never_block() {
        let names = HostNames::start(fake);
        let known = IpAddr::from([10, 0, 0, 7]);
        let nameless = IpAddr::from([10, 0, 0, 8]);
        let asked = Instant::now();
        assert_eq!(names.name(known), None, "first ask: not known yet");
        assert_eq!(names.name(nameless), None);
        assert!(
            asked.elapsed() < Duration::from_millis(15),
            "asking does not wait"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while names.name(known).is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(names.name(known).as_deref(), Some("db.example"));
        assert_eq!(names.name(nameless), None, "no name: the address stays");
        assert_eq!(names.name(IpAddr::from([0, 0, 0, 0])), None);
    }

    #[test]
    fn loopback_resolves_through_the_system() {
        // /etc/hosts names 127.0.0.1 on every Debian system (`localhost`).
        let name = reverse_lookup(IpAddr::from([127, 0, 0, 1]));
        assert!(name.is_some_and(|n| !n.is_empty()));
    }
}
