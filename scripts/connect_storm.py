#!/usr/bin/env python3
"""A loopback connect storm for scripts/probe_cost.sh: connect, send 100 bytes, close with RST, for ARGV[1] seconds."""
import socket,threading,time,sys
dur=float(sys.argv[1])
srv=socket.socket(); srv.bind(("127.0.0.1",0)); srv.listen(4096); port=srv.getsockname()[1]
def acc():
    while True:
        try: c,_=srv.accept()
        except OSError: return
        try:
            while c.recv(512): pass
        except OSError: pass
        c.close()
for _ in range(2): threading.Thread(target=acc,daemon=True).start()
import struct
n=0; end=time.time()+dur
while time.time()<end:
    s=socket.create_connection(("127.0.0.1",port)); s.sendall(b"x"*100)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii",1,0)); s.close(); n+=1
print("connections", n, "per s", n/dur)
