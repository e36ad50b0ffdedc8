//! uid → user name, from `/etc/passwd`, cached. The file is re-read only when its modification
//! time changes (checked at most once per [`UserNames::refresh`] call, i.e. once a second).

use std::{collections::HashMap, path::PathBuf, time::SystemTime};

/// A cached uid → name table.
#[derive(Clone, Debug, Default)]
pub struct UserNames {
    names: HashMap<u32, String>,
    source: Option<PathBuf>,
    modified: Option<SystemTime>,
}

impl UserNames {
    /// Names from `/etc/passwd`.
    pub fn from_system() -> UserNames {
        let mut names = UserNames {
            source: Some(PathBuf::from("/etc/passwd")),
            ..UserNames::default()
        };
        names.refresh();
        names
    }

    /// A fixed table (tests).
    pub fn fixed(entries: &[(u32, &str)]) -> UserNames {
        UserNames {
            names: entries.iter().map(|(u, n)| (*u, n.to_string())).collect(),
            ..UserNames::default()
        }
    }

    /// Re-reads the source file if it changed since the last read.
    pub fn refresh(&mut self) {
        let Some(path) = &self.source else { return };
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if modified.is_some() && modified == self.modified {
            return;
        }
        if let Ok(text) = std::fs::read_to_string(path) {
            self.names = parse_passwd(&text);
            self.modified = modified;
        }
    }

    /// The user name of `uid`, if known.
    pub fn get(&self, uid: u32) -> Option<&str> {
        self.names.get(&uid).map(String::as_str)
    }

    /// The user name of `uid`, or the number when unknown.
    pub fn name_or_uid(&self, uid: u32) -> String {
        match self.get(uid) {
            Some(name) => name.to_string(),
            None => uid.to_string(),
        }
    }
}

/// `name:x:uid:...` lines → uid → name (first entry wins, as getpwuid does).
fn parse_passwd(text: &str) -> HashMap<u32, String> {
    let mut names = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if let Ok(uid) = uid.parse::<u32>() {
            names.entry(uid).or_insert_with(|| name.to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_parse() {
        let names = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\n# comment\nbad\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nalias:x:0:0::/:/bin/sh\n",
        );
        assert_eq!(names.get(&0).map(String::as_str), Some("root"));
        assert_eq!(names.get(&33).map(String::as_str), Some("www-data"));
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn unknown_uids_show_as_numbers() {
        let names = UserNames::fixed(&[(0, "root")]);
        assert_eq!(names.name_or_uid(0), "root");
        assert_eq!(names.name_or_uid(4242), "4242");
    }
}
