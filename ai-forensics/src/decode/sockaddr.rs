//! Socket addresses read from the traced process (connect, bind, sendto,
//! accept, recvfrom, getpeername...).
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use serde_json::{Value, json};

use super::escape;

/// A decoded socket address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockAddr {
    /// IPv4.
    Inet(SocketAddrV4),
    /// IPv6.
    Inet6(SocketAddrV6),
    /// Unix socket: filesystem path, `@abstract` name, or unnamed.
    Unix(UnixAddr),
    /// Netlink.
    Netlink {
        /// Port id.
        pid: u32,
        /// Multicast groups.
        groups: u32,
    },
    /// Another family, kept as bytes.
    Other {
        /// Address family.
        family: u16,
        /// Raw bytes after the family.
        data: Vec<u8>,
    },
}

/// The three kinds of unix socket address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnixAddr {
    /// A path in the filesystem.
    Path(Vec<u8>),
    /// An abstract name (leading NUL in the kernel's form).
    Abstract(Vec<u8>),
    /// No address.
    Unnamed,
}

fn u16_be(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_ne(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses a `struct sockaddr` of `b.len()` bytes. `None` when it is too
/// short to hold its family's fixed part.
#[must_use]
pub fn parse(b: &[u8]) -> Option<SockAddr> {
    let family = u16::from_ne_bytes(b.get(0..2)?.try_into().ok()?);
    match i32::from(family) {
        libc::AF_INET => {
            let port = u16_be(b, 2)?;
            let ip: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(SockAddr::Inet(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
        libc::AF_INET6 => {
            let port = u16_be(b, 2)?;
            let flow = u32::from_be_bytes(b.get(4..8)?.try_into().ok()?);
            let ip: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let scope = u32_ne(b, 24).unwrap_or(0);
            Some(SockAddr::Inet6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flow,
                scope,
            )))
        }
        libc::AF_UNIX => {
            let path = &b[2..];
            Some(SockAddr::Unix(match path.first() {
                None => UnixAddr::Unnamed,
                Some(0) => {
                    let name = &path[1..];
                    if name.is_empty() {
                        UnixAddr::Unnamed
                    } else {
                        UnixAddr::Abstract(name.to_vec())
                    }
                }
                Some(_) => UnixAddr::Path(super::cstr(path)),
            }))
        }
        libc::AF_NETLINK => Some(SockAddr::Netlink {
            pid: u32_ne(b, 4)?,
            groups: u32_ne(b, 8)?,
        }),
        _ => Some(SockAddr::Other {
            family,
            data: b[2..].to_vec(),
        }),
    }
}

impl SockAddr {
    /// strace-like text: `127.0.0.1:80`, `[::1]:80`, `unix:"/run/x.sock"`.
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            Self::Inet(a) => a.to_string(),
            Self::Inet6(a) => a.to_string(),
            Self::Unix(UnixAddr::Path(p)) => format!("unix:{}", escape::quoted(p)),
            Self::Unix(UnixAddr::Abstract(p)) => format!("unix:@{}", escape::quoted(p)),
            Self::Unix(UnixAddr::Unnamed) => "unix:unnamed".to_owned(),
            Self::Netlink { pid, groups } => format!("netlink:pid={pid},groups={groups:#x}"),
            Self::Other { family, data } => format!("family={family} {}", hex(data)),
        }
    }

    /// JSON form: `{"family": "inet", "ip": ..., "port": ...}` and the like.
    #[must_use]
    pub fn json(&self) -> Value {
        match self {
            Self::Inet(a) => json!({"family": "inet", "ip": a.ip().to_string(), "port": a.port()}),
            Self::Inet6(a) => {
                json!({"family": "inet6", "ip": a.ip().to_string(), "port": a.port(), "scope_id": a.scope_id()})
            }
            Self::Unix(UnixAddr::Path(p)) => json!({"family": "unix", "path": escape::escape(p)}),
            Self::Unix(UnixAddr::Abstract(p)) => {
                json!({"family": "unix", "abstract": escape::escape(p)})
            }
            Self::Unix(UnixAddr::Unnamed) => json!({"family": "unix"}),
            Self::Netlink { pid, groups } => {
                json!({"family": "netlink", "pid": pid, "groups": groups})
            }
            Self::Other { family, data } => json!({"family": family, "data": hex(data)}),
        }
    }

    /// The endpoint as `ip:port` for network families.
    #[must_use]
    pub fn endpoint(&self) -> Option<String> {
        match self {
            Self::Inet(a) => Some(a.to_string()),
            Self::Inet6(a) => Some(a.to_string()),
            Self::Unix(_) => Some(self.text()),
            _ => None,
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(port: u16, ip: [u8; 4]) -> Vec<u8> {
        let mut v = (libc::AF_INET as u16).to_ne_bytes().to_vec();
        v.extend_from_slice(&port.to_be_bytes());
        v.extend_from_slice(&ip);
        v.extend_from_slice(&[0; 8]);
        v
    }

    #[test]
    fn families() {
        let a = parse(&inet(8080, [169, 254, 169, 254])).unwrap();
        assert_eq!(a.text(), "169.254.169.254:8080");
        assert_eq!(a.json()["port"], 8080);
        let mut v6 = (libc::AF_INET6 as u16).to_ne_bytes().to_vec();
        v6.extend_from_slice(&443u16.to_be_bytes());
        v6.extend_from_slice(&[0; 4]);
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v6.extend_from_slice(&[0; 4]);
        assert_eq!(parse(&v6).unwrap().text(), "[::1]:443");
        let mut u = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        u.extend_from_slice(b"/run/a\"b.sock\0junk");
        assert_eq!(parse(&u).unwrap().text(), "unix:\"/run/a\\\"b.sock\"");
        let mut ab = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        ab.extend_from_slice(b"\0name");
        assert_eq!(parse(&ab).unwrap().text(), "unix:@\"name\"");
    }

    #[test]
    fn short_or_empty() {
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&(libc::AF_INET as u16).to_ne_bytes()), None);
        let u = (libc::AF_UNIX as u16).to_ne_bytes();
        assert_eq!(parse(&u), Some(SockAddr::Unix(UnixAddr::Unnamed)));
    }
}
