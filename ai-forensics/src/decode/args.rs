//! Rendering a syscall's arguments as JSON, from its signature. The JSON
//! form is the only rendered form: `output::text` prints text from it, so
//! the live stream and a replay from the store read the same.
use std::borrow::Cow;

use ai_forensics_common::ev;
use serde::{Serialize, Serializer, ser::SerializeMap as _};
use serde_json::{Value, json};

use super::{Syscall, escape, flags, sockaddr};
use crate::syscall::{
    signature::{self, Arg, Ret, Signature},
    table,
};

/// `AT_FDCWD` as the kernel sees it in a register.
pub const AT_FDCWD: i64 = -100;

/// Looks up what an fd of the calling process refers to (display form).
pub trait FdNames {
    /// Escaped description of `fd` in process `tgid`.
    fn fd_name(&self, tgid: u32, fd: i64) -> Option<String>;
}

impl FdNames for () {
    fn fd_name(&self, _: u32, _: i64) -> Option<String> {
        None
    }
}

/// Arguments by name, in the kernel's order, with `<name>_path` and
/// `<name>_truncated` siblings. Serialised as a JSON object; kept as a
/// vector because it is built once per event and read rarely.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Args(pub Vec<(Cow<'static, str>, Value)>);

static NULL: Value = Value::Null;

impl Args {
    fn insert(&mut self, k: impl Into<Cow<'static, str>>, v: Value) {
        self.0.push((k.into(), v));
    }

    /// The value of argument `k`.
    #[must_use]
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v)
    }

    /// Argument names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_ref())
    }
}

impl std::ops::Index<&str> for Args {
    type Output = Value;
    fn index(&self, k: &str) -> &Value {
        self.get(k).unwrap_or(&NULL)
    }
}

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k.as_ref(), v)?;
        }
        m.end()
    }
}

/// A syscall's arguments, rendered.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    /// Name of the syscall.
    pub name: String,
    /// Arguments.
    pub args: Args,
    /// How the return value reads (fd, address, size...).
    pub ret: Ret,
}

/// An int argument (the register's low 32 bits, signed).
#[must_use]
pub fn int(v: u64) -> i64 {
    i64::from(v as u32 as i32)
}

fn str_arg(s: &Syscall, second: bool) -> (Option<&[u8]>, bool) {
    if second {
        (s.str1.as_deref(), s.flags & ev::STR1_TRUNC != 0)
    } else {
        (s.str0.as_deref(), s.flags & ev::STR0_TRUNC != 0)
    }
}

fn hex_or_null(v: u64) -> Value {
    if v == 0 {
        Value::Null
    } else {
        json!(format!("{v:#x}"))
    }
}

/// A string argument that could not be read: its pointer, as an object so
/// it cannot be mistaken for a path that reads "0x...".
fn unread(v: u64) -> Value {
    if v == 0 {
        Value::Null
    } else {
        json!({ "ptr": format!("{v:#x}") })
    }
}

/// Renders `s` with its signature (raw hex arguments when it has none).
#[must_use]
pub fn render(s: &Syscall, names: &dyn FdNames) -> Rendered {
    let name = table::display_name(s.nr);
    let sig = table::name(s.nr).and_then(signature::lookup);
    let mut args = Args::default();
    match sig {
        Some(sig) => render_known(s, sig, names, &mut args),
        None => {
            for (i, a) in s.args.iter().enumerate() {
                args.insert(format!("arg{i}"), json!(format!("{a:#x}")));
            }
        }
    }
    Rendered {
        name,
        args,
        ret: sig.map_or(Ret::Int, |g| g.ret),
    }
}

fn render_known(s: &Syscall, sig: &Signature, names: &dyn FdNames, args: &mut Args) {
    for (i, (an, kind)) in sig.args.iter().enumerate() {
        let v = s.args[i];
        let mut extra: Option<(String, Value)> = None;
        let j: Value = match kind {
            Arg::Fd | Arg::DirFd => {
                let fd = int(v);
                if *kind == Arg::DirFd && fd == AT_FDCWD {
                    json!("AT_FDCWD")
                } else {
                    if let Some(n) = names.fd_name(s.tgid, fd) {
                        extra = Some((format!("{an}_path"), json!(n)));
                    }
                    json!(fd)
                }
            }
            Arg::Path | Arg::Path2 | Arg::Str => {
                let (bytes, cut) = str_arg(s, *kind == Arg::Path2);
                match bytes {
                    Some(b) => {
                        if cut {
                            extra = Some((format!("{an}_truncated"), json!(true)));
                        }
                        json!(escape::escape(b))
                    }
                    None => unread(v),
                }
            }
            Arg::Argv => match s.argv() {
                Some(list) => {
                    if s.flags & ev::STR1_TRUNC != 0 {
                        extra = Some((format!("{an}_truncated"), json!(true)));
                    }
                    Value::Array(list.iter().map(|a| json!(escape::escape(a))).collect())
                }
                None => unread(v),
            },

            Arg::SockAddr | Arg::SockAddrOut => {
                let wanted = *kind == Arg::SockAddr || s.ret >= 0;
                match (wanted && !s.blob.is_empty())
                    .then(|| sockaddr::parse(&s.blob))
                    .flatten()
                {
                    Some(a) => a.json(),
                    None => hex_or_null(v),
                }
            }
            Arg::MsgHdr => {
                if let Some(a) = sockaddr::parse(&s.blob) {
                    extra = Some(("dest_addr".to_owned(), a.json()));
                }
                hex_or_null(v)
            }
            Arg::FdPair => {
                if s.blob.len() >= 8 && s.ret >= 0 {
                    let a = i32::from_ne_bytes(s.blob[0..4].try_into().unwrap_or_default());
                    let b = i32::from_ne_bytes(s.blob[4..8].try_into().unwrap_or_default());
                    json!([a, b])
                } else {
                    hex_or_null(v)
                }
            }
            Arg::CloneArgs => {
                if s.blob.len() >= 8 {
                    let f = u64::from_ne_bytes(s.blob[0..8].try_into().unwrap_or_default());
                    json!({"flags": flags::clone_flags(f)})
                } else {
                    hex_or_null(v)
                }
            }
            Arg::Int => json!(int(v)),
            Arg::UInt | Arg::Size => json!(v),
            Arg::Off => json!(v as i64),
            Arg::Ptr | Arg::SockLenPtr => hex_or_null(v),
            Arg::Mode => json!(format!("0{:o}", v as u32)),
            _ => json!(symbolic(*kind, v)),
        };
        args.insert(*an, j);
        if let Some((k, x)) = extra {
            args.insert(k, x);
        }
    }
}

fn symbolic(kind: Arg, v: u64) -> String {
    match kind {
        Arg::OpenFlags => flags::open_flags(v),
        Arg::AccessMode => flags::access_mode(v),
        Arg::AtFlags => flags::at_flags(v),
        Arg::Prot => flags::prot(v),
        Arg::MapFlags => flags::map_flags(v),
        Arg::Advice => flags::advice(int(v)),
        Arg::FutexOp => flags::futex_op(v),
        Arg::CloneFlags => flags::clone_flags(v),
        Arg::Domain => flags::domain(int(v)),
        Arg::SockType => flags::sock_type(v),
        Arg::Signal => flags::signal(int(v)),
        Arg::Whence => flags::whence(int(v)),
        Arg::IoctlReq => flags::ioctl_req(v & 0xffff_ffff),
        Arg::FcntlCmd => flags::fcntl_cmd(int(v)),
        Arg::PrctlOp => flags::prctl_op(int(v)),
        Arg::PtraceReq => flags::ptrace_req(v as i64),
        Arg::NsFlags => flags::ns_flags(v),
        _ => format!("{v:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Record, record, tests::syscall_bytes};

    struct Names;
    impl FdNames for Names {
        fn fd_name(&self, _: u32, fd: i64) -> Option<String> {
            (fd == 3).then(|| "/data/model.pt".to_owned())
        }
    }

    pub(crate) fn sys(
        name: &str,
        ret: i64,
        args: [u64; 6],
        blob: &[u8],
        s0: &[u8],
        s1: &[u8],
        flags: u32,
    ) -> Syscall {
        let nr = table::number(name).unwrap();
        let Record::Syscall(s) =
            record(&syscall_bytes(nr, ret, args, blob, s0, s1, flags)).unwrap()
        else {
            panic!()
        };
        s
    }

    #[test]
    fn openat_args_in_kernel_order() {
        let s = sys(
            "openat",
            3,
            [AT_FDCWD as u64, 0x1000, 0o2000000, 0, 0, 0],
            b"",
            b"/data/model.pt",
            b"",
            0,
        );
        let r = render(&s, &Names);
        let keys: Vec<&str> = r.args.keys().collect();
        assert_eq!(keys, ["dirfd", "pathname", "flags", "mode"]);
        assert_eq!(r.args["pathname"], "/data/model.pt");
        assert_eq!(r.args["flags"], "O_RDONLY|O_CLOEXEC");
        assert_eq!(r.ret, Ret::Fd);
    }

    #[test]
    fn fds_carry_their_path() {
        let s = sys("read", 4096, [3, 0x7000, 4096, 0, 0, 0], b"", b"", b"", 0);
        let r = render(&s, &Names);
        assert_eq!(r.args["fd"], 3);
        assert_eq!(r.args["fd_path"], "/data/model.pt");
        assert_eq!(r.args["count"], 4096);
    }

    #[test]
    fn hostile_path_and_truncation() {
        let s = sys(
            "openat",
            3,
            [AT_FDCWD as u64, 1, 0, 0, 0, 0],
            b"",
            b"a\n\"b\xff",
            b"",
            ev::STR0_TRUNC,
        );
        let r = render(&s, &());
        assert_eq!(r.args["pathname"], "a\\n\"b\\xff");
        assert_eq!(r.args["pathname_truncated"], true);
    }

    #[test]
    fn unknown_syscall_is_raw() {
        let mut s = sys("read", 0, [1, 2, 3, 4, 5, 6], b"", b"", b"", 0);
        s.nr = 500;
        let r = render(&s, &());
        assert_eq!(r.name, "syscall_500");
        assert_eq!(r.args["arg5"], "0x6");
    }
}
