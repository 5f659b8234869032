//! Rendering a syscall's arguments and return value, as JSON and as
//! strace-like text, from its signature.
use serde_json::{Map, Value, json};

use super::{Syscall, escape, flags, sockaddr};
use crate::syscall::{
    signature::{self, Arg, Ret, Signature},
    table,
};
use ai_forensics_common::ev;

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

/// A syscall rendered both ways.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    /// Name of the syscall.
    pub name: String,
    /// Arguments by name.
    pub args: Map<String, Value>,
    /// `name(arg, arg, ...)` text without the return value.
    pub call_text: String,
    /// Return value text (`3</etc/passwd>`, `-1 ENOENT`, `0x7f..`).
    pub ret_text: String,
}

fn int(v: u64) -> i64 {
    v as u32 as i32 as i64
}

fn fd_text(names: &dyn FdNames, tgid: u32, fd: i64) -> (String, Option<String>) {
    match names.fd_name(tgid, fd) {
        Some(n) => (format!("{fd}<{n}>"), Some(n)),
        None => (fd.to_string(), None),
    }
}

fn str_arg(s: &Syscall, second: bool) -> (Option<&[u8]>, bool) {
    if second {
        (s.str1.as_deref(), s.flags & ev::STR1_TRUNC != 0)
    } else {
        (s.str0.as_deref(), s.flags & ev::STR0_TRUNC != 0)
    }
}

/// Renders `s` with its signature (raw hex arguments when it has none).
#[must_use]
pub fn render(s: &Syscall, names: &dyn FdNames) -> Rendered {
    let name = table::display_name(s.nr);
    let sig = table::name(s.nr).and_then(signature::lookup);
    let mut args = Map::new();
    let mut texts = Vec::new();
    match sig {
        Some(sig) => render_known(s, sig, names, &mut args, &mut texts),
        None => {
            for (i, a) in s.args.iter().enumerate() {
                args.insert(format!("arg{i}"), json!(format!("{a:#x}")));
                texts.push(format!("{a:#x}"));
            }
        }
    }
    let ret_text = ret_text(s, sig.map_or(Ret::Int, |g| g.ret), names);
    Rendered {
        call_text: format!("{name}({})", texts.join(", ")),
        name,
        args,
        ret_text,
    }
}

fn render_known(
    s: &Syscall,
    sig: &Signature,
    names: &dyn FdNames,
    args: &mut Map<String, Value>,
    texts: &mut Vec<String>,
) {
    for (i, (an, kind)) in sig.args.iter().enumerate() {
        let v = s.args[i];
        let key = (*an).to_owned();
        let (j, t): (Value, String) = match kind {
            Arg::Fd => {
                let fd = int(v);
                let (t, n) = fd_text(names, s.tgid, fd);
                if let Some(n) = n {
                    args.insert(format!("{an}_path"), json!(n));
                }
                (json!(fd), t)
            }
            Arg::DirFd => {
                let fd = int(v);
                if fd == AT_FDCWD {
                    (json!("AT_FDCWD"), "AT_FDCWD".to_owned())
                } else {
                    let (t, n) = fd_text(names, s.tgid, fd);
                    if let Some(n) = n {
                        args.insert(format!("{an}_path"), json!(n));
                    }
                    (json!(fd), t)
                }
            }
            Arg::Path | Arg::Path2 | Arg::Str => {
                let (bytes, cut) = str_arg(s, *kind == Arg::Path2);
                match bytes {
                    Some(b) => {
                        if cut {
                            args.insert(format!("{an}_truncated"), json!(true));
                        }
                        let dots = if cut { "..." } else { "" };
                        (
                            json!(escape::escape(b)),
                            format!("{}{dots}", escape::quoted(b)),
                        )
                    }
                    None if v == 0 => (Value::Null, "NULL".to_owned()),
                    None => (json!(format!("{v:#x}")), format!("{v:#x}")),
                }
            }
            Arg::Argv => match s.argv() {
                Some(list) => {
                    let cut = s.flags & ev::STR1_TRUNC != 0;
                    if cut {
                        args.insert(format!("{an}_truncated"), json!(true));
                    }
                    let j: Vec<Value> = list.iter().map(|a| json!(escape::escape(a))).collect();
                    let t: Vec<String> = list.iter().map(|a| escape::quoted(a)).collect();
                    let dots = if cut { ", ..." } else { "" };
                    (Value::Array(j), format!("[{}{dots}]", t.join(", ")))
                }
                None => (json!(format!("{v:#x}")), format!("{v:#x}")),
            },
            Arg::SockAddr | Arg::SockAddrOut => {
                let wanted = *kind == Arg::SockAddr || s.ret >= 0;
                match (wanted && !s.blob.is_empty())
                    .then(|| sockaddr::parse(&s.blob))
                    .flatten()
                {
                    Some(a) => (a.json(), format!("{{{}}}", a.text())),
                    None if v == 0 => (Value::Null, "NULL".to_owned()),
                    None => (json!(format!("{v:#x}")), format!("{v:#x}")),
                }
            }
            Arg::FdPair => {
                if s.blob.len() >= 8 && s.ret >= 0 {
                    let a = i32::from_ne_bytes(s.blob[0..4].try_into().unwrap_or_default());
                    let b = i32::from_ne_bytes(s.blob[4..8].try_into().unwrap_or_default());
                    (json!([a, b]), format!("[{a}, {b}]"))
                } else {
                    (json!(format!("{v:#x}")), format!("{v:#x}"))
                }
            }
            Arg::CloneArgs => {
                if s.blob.len() >= 8 {
                    let f = u64::from_ne_bytes(s.blob[0..8].try_into().unwrap_or_default());
                    let fl = flags::clone_flags(f);
                    (json!({"flags": fl}), format!("{{flags={fl}}}"))
                } else {
                    (json!(format!("{v:#x}")), format!("{v:#x}"))
                }
            }
            Arg::Int => (json!(int(v)), int(v).to_string()),
            Arg::UInt | Arg::Size => (json!(v), v.to_string()),
            Arg::Off => (json!(v as i64), (v as i64).to_string()),
            Arg::Ptr | Arg::SockLenPtr => {
                if v == 0 {
                    (Value::Null, "NULL".to_owned())
                } else {
                    (json!(format!("{v:#x}")), format!("{v:#x}"))
                }
            }
            Arg::Mode => (
                json!(format!("0{:o}", v as u32)),
                format!("0{:o}", v as u32),
            ),
            _ => {
                let t = symbolic(*kind, v);
                (json!(t), t)
            }
        };
        args.insert(key, j);
        texts.push(t);
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

fn ret_text(s: &Syscall, kind: Ret, names: &dyn FdNames) -> String {
    if s.at_entry {
        return "?".to_owned();
    }
    if let Some(e) = s.errno() {
        let n = table::errno_name(e).unwrap_or("E?");
        return format!("-1 {n}");
    }
    match kind {
        Ret::Addr => format!("{:#x}", s.ret),
        Ret::Fd => fd_text(names, s.tgid, s.ret).0,
        _ => s.ret.to_string(),
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

    fn sys(
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
    fn openat_like_strace() {
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
        assert_eq!(
            r.call_text,
            "openat(AT_FDCWD, \"/data/model.pt\", O_RDONLY|O_CLOEXEC, 00)"
        );
        assert_eq!(r.ret_text, "3</data/model.pt>");
        assert_eq!(r.args["pathname"], "/data/model.pt");
        assert_eq!(r.args["flags"], "O_RDONLY|O_CLOEXEC");
    }

    #[test]
    fn read_names_the_file_and_errors_name_errno() {
        let s = sys("read", 4096, [3, 0x7000, 4096, 0, 0, 0], b"", b"", b"", 0);
        let r = render(&s, &Names);
        assert_eq!(r.call_text, "read(3</data/model.pt>, 0x7000, 4096)");
        assert_eq!(r.args["fd_path"], "/data/model.pt");
        let e = sys(
            "openat",
            -2,
            [AT_FDCWD as u64, 1, 0, 0, 0, 0],
            b"",
            b"/nope",
            b"",
            0,
        );
        assert_eq!(render(&e, &()).ret_text, "-1 ENOENT");
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
        assert!(r.call_text.contains("\"a\\n\\\"b\\xff\"..."));
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
