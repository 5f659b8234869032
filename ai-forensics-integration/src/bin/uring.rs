//! A workload that does its I/O through io_uring only (no open, read,
//! write, connect or send syscalls for it): what a syscall tracer cannot see.
//!
//! * `uring read PATH`: openat + read through the ring; prints the content.
//! * `uring write PATH TEXT`: openat(O_CREAT) + write through the ring.
//! * `uring net IP PORT`: connect + send + recv through the ring.
//! * `uring repeat N PATH`: N reads of PATH (openat + read + close).
//!
//! With `URING_FIRST_OPEN=FILE` it reads FILE (with syscalls) first.
use std::{ffi::CString, net::SocketAddrV4, os::fd::RawFd};

use io_uring::{IoUring, opcode, squeue, types};

fn run(ring: &mut IoUring, e: squeue::Entry) -> i32 {
    // SAFETY: every buffer an entry points to outlives this call, which
    // waits for the completion.
    unsafe { ring.submission().push(&e).expect("queue full") };
    ring.submit_and_wait(1).expect("io_uring_enter");
    ring.completion().next().expect("completion").result()
}

fn open(ring: &mut IoUring, path: &str, flags: i32) -> i32 {
    let c = CString::new(path).expect("path");
    run(
        ring,
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), c.as_ptr())
            .flags(flags)
            .mode(0o644)
            .build(),
    )
}

fn read_all(ring: &mut IoUring, fd: RawFd) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = run(
        ring,
        opcode::Read::new(types::Fd(fd), buf.as_mut_ptr(), buf.len() as u32).build(),
    );
    buf.truncate(n.max(0) as usize);
    buf
}

fn close(ring: &mut IoUring, fd: RawFd) {
    run(ring, opcode::Close::new(types::Fd(fd)).build());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // A file to open (a plain syscall) before the ring exists: a model
    // file makes the process an AI workload first.
    if let Some(p) = std::env::var_os("URING_FIRST_OPEN") {
        let _ = std::fs::read(p);
    }
    let mut ring = IoUring::new(8).expect("io_uring_setup");
    match args.get(1).map(String::as_str) {
        Some("read") => {
            let fd = open(&mut ring, &args[2], libc::O_RDONLY);
            if fd < 0 {
                println!("open error {}", -fd);
                return;
            }
            let data = read_all(&mut ring, fd);
            println!(
                "read {} bytes: {}",
                data.len(),
                String::from_utf8_lossy(&data)
            );
        }
        Some("write") => {
            let fd = open(
                &mut ring,
                &args[2],
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
            );
            let text = args[3].as_bytes();
            let n = run(
                &mut ring,
                opcode::Write::new(types::Fd(fd), text.as_ptr(), text.len() as u32).build(),
            );
            println!("wrote {n}");
        }
        Some("net") => {
            let addr: SocketAddrV4 = format!("{}:{}", args[2], args[3]).parse().expect("address");
            // SAFETY: plain socket(2).
            let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
            let sa = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: addr.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*addr.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            let c = run(
                &mut ring,
                opcode::Connect::new(
                    types::Fd(s),
                    (&raw const sa).cast(),
                    size_of::<libc::sockaddr_in>() as u32,
                )
                .build(),
            );
            println!("connect {c}");
            let msg = b"GET / HTTP/1.0\r\n\r\n";
            let n = run(
                &mut ring,
                opcode::Send::new(types::Fd(s), msg.as_ptr(), msg.len() as u32).build(),
            );
            println!("sent {n}");
            let mut buf = [0u8; 64];
            let r = run(
                &mut ring,
                opcode::Recv::new(types::Fd(s), buf.as_mut_ptr(), buf.len() as u32).build(),
            );
            println!("received {r}");
        }
        Some("repeat") => {
            let n: usize = args[2].parse().expect("count");
            for _ in 0..n {
                let fd = open(&mut ring, &args[3], libc::O_RDONLY);
                if fd >= 0 {
                    read_all(&mut ring, fd);
                    close(&mut ring, fd);
                }
            }
            println!("done {n}");
        }
        _ => {
            eprintln!("usage: uring read PATH | write PATH TEXT | net IP PORT | repeat N PATH");
            std::process::exit(2);
        }
    }
}
