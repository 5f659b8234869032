//! Field offsets of kernel structures, from the running kernel's BTF.
//!
//! The fork hook receives `struct task_struct *`; reading its `pid` and
//! `tgid` needs their offsets on this very kernel. Instead of compiling
//! against one kernel's headers, user space looks them up in
//! `/sys/kernel/btf/vmlinux` and hands them to the programs.
//!
//! Only two offsets are needed, so the type section is walked in place: a
//! general BTF library indexes every type and string of vmlinux (about 50 MB
//! of heap at start-up for a 5 MB file), which alone would break the agent's
//! memory budget. The walk keeps the file and one offset per type. The test
//! below checks it against `btf-rs` on the running kernel.
use crate::error::{Error, Result};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// Offsets the programs need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskOffsets {
    /// `task_struct.pid`.
    pub pid: u32,
    /// `task_struct.tgid`.
    pub tgid: u32,
}

/// Reads the offsets from the running kernel's BTF.
pub fn task_offsets() -> Result<TaskOffsets> {
    let data = std::fs::read(VMLINUX).map_err(|e| {
        Error::env(format!(
            "kernel BTF: cannot read {VMLINUX} ({e}); a kernel with CONFIG_DEBUG_INFO_BTF=y is required"
        ))
    })?;
    let btf = Btf::parse(&data).map_err(|e| Error::env(format!("kernel BTF {VMLINUX}: {e}")))?;
    let off = |field| {
        btf.member_offset("task_struct", field)
            .map_err(|e| Error::env(format!("kernel BTF: {e}")))
    };
    Ok(TaskOffsets {
        pid: off("pid")?,
        tgid: off("tgid")?,
    })
}

/// The io_uring request fields the io_uring programs read: the command
/// area in `io_kiocb`, `io_open.file_slot`, `io_open.filename`,
/// `filename.name`, `io_connect.addr`, `io_connect.addr_len`.
pub type UringRequest = [u32; 6];

/// Offsets the identity checks need (files by inode, executables by inode,
/// AI markers by dentry name), and the io_uring request fields (`None`
/// when this kernel's BTF lacks them: the operations are still counted,
/// without path or address), from one read of the running kernel's BTF.
pub fn identity_offsets() -> Result<(ai_forensics_common::Offsets, Option<UringRequest>)> {
    let data = std::fs::read(VMLINUX).map_err(|e| {
        Error::env(format!(
            "kernel BTF: cannot read {VMLINUX} ({e}); identity rules need CONFIG_DEBUG_INFO_BTF=y"
        ))
    })?;
    let btf = Btf::parse(&data).map_err(|e| Error::env(format!("kernel BTF {VMLINUX}: {e}")))?;
    let off = |s: &str, field: &str| {
        btf.member_offset(s, field)
            .map_err(|e| Error::env(format!("kernel BTF (identity rules): {e}")))
    };
    let uring = |s: &str, field: &str| btf.member_offset(s, field).ok();
    let request = (|| {
        Some([
            uring("io_kiocb", "cmd")?,
            uring("io_open", "file_slot")?,
            uring("io_open", "filename")?,
            uring("filename", "name")?,
            uring("io_connect", "addr")?,
            uring("io_connect", "addr_len")?,
        ])
    })();
    let identity = ai_forensics_common::Offsets {
        task_files: off("task_struct", "files")?,
        files_fdt: off("files_struct", "fdt")?,
        fdt_max_fds: off("fdtable", "max_fds")?,
        fdt_fd: off("fdtable", "fd")?,
        file_inode: off("file", "f_inode")?,
        file_dentry: off("file", "f_path")? + off("path", "dentry")?,
        inode_ino: off("inode", "i_ino")?,
        inode_sb: off("inode", "i_sb")?,
        inode_size: off("inode", "i_size")?,
        sb_dev: off("super_block", "s_dev")?,
        dentry_name: off("dentry", "d_name")? + off("qstr", "name")?,
        dentry_len: off("dentry", "d_name")? + off("qstr", "len")?,
        bprm_file: off("linux_binprm", "file")?,
        bprm_filename: off("linux_binprm", "filename")?,
        file_mnt: off("file", "f_path")? + off("path", "mnt")?,
        dentry_parent: off("dentry", "d_parent")?,
        vfsmount_root: off("vfsmount", "mnt_root")?,
        mount_mnt: off("mount", "mnt")?,
        mount_parent: off("mount", "mnt_parent")?,
        mount_mountpoint: off("mount", "mnt_mountpoint")?,
    };
    Ok((identity, request))
}

// Kinds (include/uapi/linux/btf.h).
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;
const KIND_MAX: u32 = 19;

/// A BTF blob, indexed by type id.
struct Btf<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    little: bool,
    /// Offset in `types` of type id `i + 1`.
    offsets: Vec<u32>,
}

impl<'a> Btf<'a> {
    fn parse(data: &'a [u8]) -> std::result::Result<Self, String> {
        let little = match data.get(..2) {
            Some([0x9f, 0xeb]) => true,
            Some([0xeb, 0x9f]) => false,
            _ => return Err("not BTF (bad magic)".into()),
        };
        let rd = |at: usize| -> std::result::Result<u32, String> {
            let b: [u8; 4] = data
                .get(at..at + 4)
                .and_then(|s| s.try_into().ok())
                .ok_or("truncated header")?;
            Ok(if little {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            })
        };
        let hdr_len = rd(4)? as usize;
        let (type_off, type_len) = (rd(8)? as usize, rd(12)? as usize);
        let (str_off, str_len) = (rd(16)? as usize, rd(20)? as usize);
        let section = |off: usize, len: usize| {
            hdr_len
                .checked_add(off)
                .and_then(|s| Some((s, s.checked_add(len)?)))
                .and_then(|(s, e)| data.get(s..e))
                .ok_or_else(|| "section out of bounds".to_owned())
        };
        let mut btf = Btf {
            types: section(type_off, type_len)?,
            strings: section(str_off, str_len)?,
            little,
            offsets: Vec::new(),
        };
        let mut at = 0usize;
        while at < btf.types.len() {
            btf.offsets.push(at as u32);
            let info = btf.u32_at(at + 4)?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
                k if k == 0 || k > KIND_MAX => {
                    return Err(format!("unknown type kind {kind}"));
                }
                _ => 0,
            };
            at += 12 + extra;
        }
        if at != btf.types.len() {
            return Err("truncated type section".into());
        }
        Ok(btf)
    }

    fn u32_at(&self, at: usize) -> std::result::Result<u32, String> {
        let b: [u8; 4] = self
            .types
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or("truncated type")?;
        Ok(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn name(&self, off: u32) -> &[u8] {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    /// (kind, name offset, vlen, kind flag, size-or-type, offset of the
    /// trailing data) of type `id`.
    fn ty(&self, id: u32) -> std::result::Result<(u32, u32, usize, bool, u32, usize), String> {
        let at = *id
            .checked_sub(1)
            .and_then(|i| self.offsets.get(i as usize))
            .ok_or_else(|| format!("no type id {id}"))? as usize;
        let info = self.u32_at(at + 4)?;
        Ok((
            (info >> 24) & 0x1f,
            self.u32_at(at)?,
            (info & 0xffff) as usize,
            info >> 31 != 0,
            self.u32_at(at + 8)?,
            at + 12,
        ))
    }

    /// Follows typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> std::result::Result<u32, String> {
        for _ in 0..32 {
            let (kind, _, _, _, next, _) = self.ty(id)?;
            if !matches!(
                kind,
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
            ) {
                return Ok(id);
            }
            id = next;
        }
        Err("type chain too long".into())
    }

    /// Bit offset of `field` in struct/union `id`, looking into anonymous
    /// members.
    fn find(&self, id: u32, field: &[u8], depth: u32) -> std::result::Result<Option<u32>, String> {
        let (kind, _, vlen, kflag, _, members) = self.ty(id)?;
        if !matches!(kind, KIND_STRUCT | KIND_UNION) || depth > 8 {
            return Ok(None);
        }
        for i in 0..vlen {
            let m = members + 12 * i;
            let (name, mtype, moff) = (self.u32_at(m)?, self.u32_at(m + 4)?, self.u32_at(m + 8)?);
            let bits = if kflag { moff & 0x00ff_ffff } else { moff };
            let n = self.name(name);
            if n == field {
                return Ok(Some(bits));
            }
            if n.is_empty()
                && let Some(inner) = self.find(self.resolve(mtype)?, field, depth + 1)?
            {
                return Ok(Some(bits + inner));
            }
        }
        Ok(None)
    }

    /// Byte offset of member `field` of `struct name`.
    fn member_offset(&self, name: &str, field: &str) -> std::result::Result<u32, String> {
        let mut found_struct = false;
        for id in 1..=self.offsets.len() as u32 {
            let (kind, n, vlen, ..) = self.ty(id)?;
            if kind != KIND_STRUCT || vlen == 0 || self.name(n) != name.as_bytes() {
                continue;
            }
            found_struct = true;
            if let Some(bits) = self.find(id, field.as_bytes(), 0)? {
                return Ok(bits / 8);
            }
        }
        Err(if found_struct {
            format!("struct {name} has no member {field}")
        } else {
            format!("no type {name}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian BTF blob from (kind, name, vlen, size/type, trailing words).
    fn blob(strings: &[u8], types: &[(u32, u32, u32, u32, Vec<u32>)]) -> Vec<u8> {
        let mut t = Vec::new();
        for (kind, name, vlen, st, extra) in types {
            for w in [*name, (kind << 24) | vlen, *st].iter().chain(extra) {
                t.extend_from_slice(&w.to_le_bytes());
            }
        }
        let mut out = vec![0x9f, 0xeb, 1, 0];
        for w in [
            24u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&t);
        out.extend_from_slice(strings);
        out
    }

    #[test]
    fn finds_direct_and_anonymous_members() {
        // Strings: 0 "", 1 "int", 5 "task_struct", 17 "pid", 21 "tgid", 26 "x".
        let strings = b"\0int\0task_struct\0pid\0tgid\0x\0";
        let types = vec![
            (KIND_INT, 1, 0, 4, vec![32]),                       // 1: int
            (KIND_UNION, 0, 2, 8, vec![26, 1, 0, 21, 1, 32]),    // 2: union { x; tgid @32 }
            (KIND_TYPEDEF, 0, 0, 2, vec![]),                     // 3: typedef of 2
            (KIND_STRUCT, 5, 2, 64, vec![17, 1, 64, 0, 3, 128]), // 4: pid @64, anon @128
        ];
        let data = blob(strings, &types);
        let b = Btf::parse(&data).unwrap();
        assert_eq!(b.member_offset("task_struct", "pid"), Ok(8));
        assert_eq!(b.member_offset("task_struct", "tgid"), Ok(20));
        assert!(
            b.member_offset("task_struct", "nope")
                .unwrap_err()
                .contains("no member")
        );
        assert!(
            b.member_offset("mm_struct", "pid")
                .unwrap_err()
                .contains("no type")
        );
    }

    #[test]
    fn bad_blobs_are_errors_not_panics() {
        assert!(Btf::parse(b"").is_err());
        assert!(Btf::parse(b"\x9f\xeb\x01\x00").is_err());
        let mut d = blob(b"\0", &[(KIND_STRUCT, 0, 3, 8, vec![0, 1, 0])]);
        assert!(Btf::parse(&d).is_err(), "members past the section end");
        d = blob(b"\0", &[(31, 0, 0, 0, vec![])]);
        assert!(Btf::parse(&d).is_err(), "unknown kind");
        // Offsets pointing outside the file.
        let mut d = blob(b"\0", &[(KIND_INT, 0, 0, 4, vec![32])]);
        d[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Btf::parse(&d).is_err());
        // A self-referencing typedef chain ends.
        let d = blob(
            b"\0s\0",
            &[
                (KIND_TYPEDEF, 0, 0, 1, vec![]),
                (KIND_STRUCT, 1, 1, 4, vec![0, 1, 0]),
            ],
        );
        let b = Btf::parse(&d).unwrap();
        assert!(b.member_offset("s", "f").is_err());
    }

    #[test]
    fn agrees_with_btf_rs_on_the_running_kernel() {
        // Needs only read access to the BTF file, not root.
        if !std::path::Path::new(VMLINUX).exists() {
            return;
        }
        let o = task_offsets().unwrap();
        assert!(o.pid > 0 && o.tgid == o.pid + 4, "{o:?}");
        let full = btf_rs::Btf::from_file(VMLINUX).unwrap();
        for (field, got) in [("pid", o.pid), ("tgid", o.tgid)] {
            let ty = full.resolve_types_by_name("task_struct").unwrap();
            let want = ty
                .iter()
                .find_map(|t| match t {
                    btf_rs::Type::Struct(s) => s
                        .members
                        .iter()
                        .find(|m| full.resolve_name(*m).is_ok_and(|n| n == field))
                        .map(|m| m.bit_offset() / 8),
                    _ => None,
                })
                .unwrap();
            assert_eq!(got, want, "{field}");
        }
    }
}
