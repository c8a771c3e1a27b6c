//! `--user NAME`: give up root once every capture handle and output file is open.
//!
//! The supplementary groups become the user's (`initgroups`), then the group and user ids are set
//! (`setgid`, `setuid`: real, effective and saved). The drop is then checked: the ids must be the
//! user's and getting root back must fail. Any failure stops the run before a frame is read.
//! glibc applies `setuid`/`setgid` to every thread of the process; this runs before the capture
//! threads start anyway.

use std::ffi::{CStr, CString};

/// Buffer for `getpwnam_r`'s strings; a larger one is tried once when it is too small.
const PASSWD_BUFFER_BYTES: usize = 4096;

/// A user's ids, from the password database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

/// Looks the user up by name (or a number, taken as a uid with a gid of the same number when no
/// user has that name).
pub fn lookup(name: &str) -> Result<User, String> {
    let cname = CString::new(name).map_err(|_| format!("--user {name:?}: not a user name"))?;
    let mut size = PASSWD_BUFFER_BYTES;
    for _ in 0..2 {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: all-zero is a valid `passwd` (null pointers, zero ids); it is only read after
        // getpwnam_r filled it.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the duration of the call; `buf` for `size` bytes.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &raw mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &raw mut result,
            )
        };
        if rc == libc::ERANGE {
            size *= 16;
            continue;
        }
        if rc != 0 {
            return Err(format!(
                "--user {name}: cannot read the user database: {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
        if result.is_null() {
            break;
        }
        let found = if pwd.pw_name.is_null() {
            name.to_owned()
        } else {
            // SAFETY: getpwnam_r set `pw_name` to a NUL-terminated string inside `buf`.
            unsafe { CStr::from_ptr(pwd.pw_name) }
                .to_string_lossy()
                .into_owned()
        };
        return Ok(User {
            name: found,
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        });
    }
    match name.parse::<libc::uid_t>() {
        Ok(id) => Ok(User {
            name: name.to_owned(),
            uid: id,
            gid: id,
        }),
        Err(_) => Err(format!("--user {name}: no such user")),
    }
}

fn os_error(what: &str, user: &User) -> String {
    format!(
        "--user {}: {what} failed: {}; refusing to go on with more privileges than asked for",
        user.name,
        std::io::Error::last_os_error()
    )
}

/// Becomes `user` for good; an error says what failed (and nothing is captured then).
pub fn drop_to(user: &User) -> Result<(), String> {
    let cname = CString::new(user.name.as_str()).unwrap_or_default();
    // SAFETY: plain system calls on integers and a valid C string.
    unsafe {
        if libc::initgroups(cname.as_ptr(), user.gid) != 0 {
            // A numeric user without a database entry: no supplementary groups at all.
            let gid = user.gid;
            if libc::setgroups(1, &raw const gid) != 0 {
                return Err(os_error("setgroups", user));
            }
        }
        if libc::setgid(user.gid) != 0 {
            return Err(os_error("setgid", user));
        }
        if libc::setuid(user.uid) != 0 {
            return Err(os_error("setuid", user));
        }
        let (uid, euid, gid, egid) = (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        );
        if uid != user.uid || euid != user.uid || gid != user.gid || egid != user.gid {
            return Err(format!(
                "--user {}: the ids are uid {uid}/{euid}, gid {gid}/{egid} after the change, not \
                 {}/{}; refusing to go on",
                user.name, user.uid, user.gid
            ));
        }
        if user.uid != 0 && libc::setuid(0) == 0 {
            return Err(format!(
                "--user {}: root could be taken back after the change; refusing to go on",
                user.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_root_and_refuses_unknown_names() {
        let root = lookup("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(
            lookup("ew-no-such-user-x")
                .unwrap_err()
                .contains("no such user")
        );
        assert!(lookup("a\0b").is_err());
        assert_eq!(lookup("4242").unwrap().uid, 4242);
    }
}
