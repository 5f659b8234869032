//! tracefs: mounted on demand, and read for tracepoint record layouts.
use std::{ffi::CString, fs, path::Path};

use crate::error::{Error, Result};

/// Where tracefs is expected.
pub const TRACEFS: &str = "/sys/kernel/tracing";

/// Makes sure tracefs is mounted at [`TRACEFS`] (it is not at boot on some
/// machines); aya reads tracepoint ids from there.
pub fn ensure_mounted() -> Result<()> {
    ensure_mounted_at(Path::new(TRACEFS))
}

fn ensure_mounted_at(dir: &Path) -> Result<()> {
    if dir.join("events").is_dir() {
        return Ok(());
    }
    if dir.exists() && !dir.is_dir() {
        return Err(Error::env(format!(
            "tracefs is not mounted and cannot be: {} is not a directory",
            dir.display()
        )));
    }
    if !dir.is_dir() {
        return Err(Error::env(format!(
            "tracefs is not mounted and cannot be: {} does not exist (kernel built without CONFIG_TRACING?)",
            dir.display()
        )));
    }
    let target = CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::env("tracefs: bad mount point"))?;
    let fstype = c"tracefs";
    // SAFETY: all pointers are valid NUL-terminated strings for the call.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(Error::env(format!(
            "tracefs is not mounted and mounting it at {} failed: {err}",
            dir.display()
        )));
    }
    if !dir.join("events").is_dir() {
        return Err(Error::env(format!(
            "tracefs mounted at {} but has no events/ directory",
            dir.display()
        )));
    }
    tracing::info!("mounted tracefs at {}", dir.display());
    Ok(())
}

/// Offset of `field` in the record of tracepoint `category/name`, from its
/// `format` file; `None` when the field does not exist on this kernel.
pub fn field_offset(category: &str, name: &str, field: &str) -> Result<Option<u32>> {
    let path = Path::new(TRACEFS)
        .join("events")
        .join(category)
        .join(name)
        .join("format");
    let text = fs::read_to_string(&path).map_err(|e| {
        Error::env(format!(
            "tracepoint {category}:{name}: reading {}: {e}",
            path.display()
        ))
    })?;
    Ok(parse_field_offset(&text, field))
}

/// Parses `field:<type> <field>;\toffset:N;` lines of a tracepoint format.
fn parse_field_offset(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let line = line.trim();
        let decl = line.strip_prefix("field:")?.split(';').next()?;
        let name = decl.rsplit([' ', '*']).next()?;
        let name = name.split('[').next()?;
        if name != field {
            return None;
        }
        let off = line.split("offset:").nth(1)?.split(';').next()?;
        off.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXIT: &str = "name: sched_process_exit\nID: 369\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
\tfield:pid_t pid;\toffset:24;\tsize:4;\tsigned:1;\n\
\tfield:int prio;\toffset:28;\tsize:4;\tsigned:1;\n\
\tfield:bool group_dead;\toffset:32;\tsize:1;\tsigned:0;\n";

    #[test]
    fn offsets_from_format() {
        assert_eq!(parse_field_offset(EXIT, "group_dead"), Some(32));
        assert_eq!(parse_field_offset(EXIT, "pid"), Some(24));
        assert_eq!(parse_field_offset(EXIT, "comm"), Some(8));
        assert_eq!(parse_field_offset(EXIT, "nope"), None);
        assert_eq!(parse_field_offset("garbage\n:::", "pid"), None);
    }
}
