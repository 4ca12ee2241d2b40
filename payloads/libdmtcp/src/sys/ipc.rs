//! System V IPC calls for `resources::sysv`: attach and detach segments, read and set semaphore
//! values, copy messages out of a queue without taking them (MSG_COPY) and send them again,
//! give a semaphore a SEM_UNDO adjustment, and which user namespace owns our IPC namespace.
//! msgrcv, msgsnd, semop and semctl go to the C library's own (`real`), past our wrappers of
//! them (`interrupt`, `sem_calls`); the rest are the C library's.
//!
//! Rules: no allocation; every pointer passed is derived from a Rust slice of the right length.
use super::{check, errno, Errno};
use core::ffi::{c_int, c_long, c_void};

/// msgrcv's flag: copy the message at this index, leave it in the queue (CONFIG_CHECKPOINT_RESTORE).
const MSG_COPY: c_int = 0o40000;
/// ioctl on a namespace fd: an fd of the user namespace that owns it.
const NS_GET_USERNS: libc::c_ulong = 0xb701;

/// shmat(id, addr, flags): the address attached.
pub fn shmat(id: c_int, addr: usize, flags: c_int) -> Result<usize, Errno> {
    // SAFETY: shmat maps the segment at `addr` (or where the kernel likes when 0); with
    // SHM_REMAP the caller replaces its own mapping of the same range, which holds nothing else.
    let p = unsafe { libc::shmat(id, addr as *const c_void, flags) };
    if p as isize == -1 {
        Err(errno())
    } else {
        Ok(p as usize)
    }
}

/// shmdt of an attach this module's caller made.
pub fn shmdt(addr: usize) -> Result<(), Errno> {
    // SAFETY: detaches the attach at `addr`, made by our caller and used by no one else.
    check(unsafe { libc::shmdt(addr as *const c_void) }).map(|_| ())
}

/// shmctl(id, IPC_RMID): the segment goes when its last attach does.
pub fn shm_remove(id: c_int) -> Result<(), Errno> {
    // SAFETY: IPC_RMID takes no buffer.
    check(unsafe { libc::shmctl(id, libc::IPC_RMID, core::ptr::null_mut()) }).map(|_| ())
}

/// A segment attached read-only where the kernel likes, as a byte slice of `len`; detach it
/// with `shmdt(slice.as_ptr() as usize)`.
pub fn shm_view(id: c_int, len: usize) -> Result<&'static [u8], Errno> {
    let p = shmat(id, 0, libc::SHM_RDONLY)?;
    // SAFETY: a fresh read-only attach of at least `len` bytes (the segment's size), which the
    // caller detaches before anything else maps there.
    Ok(unsafe { core::slice::from_raw_parts(p as *const u8, len) })
}

/// A segment attached read-write where the kernel likes, as a byte slice of `len`.
pub fn shm_view_mut(id: c_int, len: usize) -> Result<&'static mut [u8], Errno> {
    let p = shmat(id, 0, 0)?;
    // SAFETY: as above, writable; nothing else refers to this fresh attach.
    Ok(unsafe { core::slice::from_raw_parts_mut(p as *mut u8, len) })
}

/// The C library's semctl with a word argument (`real`, past our wrapper, which would take a
/// SETALL of ours for the program's and forget its adjustments).
///
/// # Safety
/// `arg` is what `cmd` takes (a buffer of the right size for GETALL/SETALL, anything else for
/// the commands that read none).
unsafe fn semctl(id: c_int, num: c_int, cmd: c_int, arg: usize) -> Result<c_int, Errno> {
    let Some(f) = crate::real::semctl() else { return Err(libc::ENOSYS) };
    // SAFETY: the caller's promise about `arg`; semctl reads it only for the commands that take one.
    check(unsafe { f(id, num, cmd, arg) })
}

/// Gives this process the SEM_UNDO adjustment `adj` of semaphore `num` of set `id` (the value
/// the kernel adds at exit) without changing the semaphore's value: one semop of `+v` and `-v`,
/// the one flagged SEM_UNDO being `-adj`, the positive first, never waiting.
pub fn sem_adjust(id: c_int, num: u16, adj: i32) -> Result<(), Errno> {
    let v = i16::try_from(-adj).map_err(|_| libc::ERANGE)?;
    let undo = libc::sembuf { sem_num: num, sem_op: v, sem_flg: (libc::SEM_UNDO | libc::IPC_NOWAIT) as i16 };
    let plain = libc::sembuf { sem_num: num, sem_op: -v, sem_flg: libc::IPC_NOWAIT as i16 };
    let mut ops = if v > 0 { [undo, plain] } else { [plain, undo] };
    let Some(f) = crate::real::semop() else { return Err(libc::ENOSYS) };
    // SAFETY: two sembufs of our own, the count given.
    check(unsafe { f(id, ops.as_mut_ptr(), ops.len()) }).map(|_| ())
}

/// semctl(GETALL) of a set of `n` semaphores into `buf` (n unsigned shorts, native order).
pub fn sem_getall(id: c_int, n: usize, buf: &mut [u8]) -> Result<(), Errno> {
    if buf.len() < 2 * n || !(buf.as_ptr() as usize).is_multiple_of(2) {
        return Err(libc::EINVAL);
    }
    // SAFETY: GETALL writes one unsigned short per semaphore of the set; `buf` is aligned and
    // holds `n` of them, the set's size (from /proc/sysvipc/sem; a set never changes size).
    unsafe { semctl(id, 0, libc::GETALL, buf.as_mut_ptr() as usize) }.map(|_| ())
}

/// semctl(SETALL) of a set of `n` semaphores from `buf` (as `sem_getall` wrote it).
pub fn sem_setall(id: c_int, n: usize, buf: &[u8]) -> Result<(), Errno> {
    if buf.len() < 2 * n || !(buf.as_ptr() as usize).is_multiple_of(2) {
        return Err(libc::EINVAL);
    }
    // SAFETY: SETALL reads one unsigned short per semaphore; `buf` holds `n`, the set's size.
    unsafe { semctl(id, 0, libc::SETALL, buf.as_ptr() as usize) }.map(|_| ())
}

/// semctl(GETPID) of semaphore `n`: the last process that changed it, as our pid namespace
/// sees it (0: none, or one outside it).
pub fn sem_getpid(id: c_int, n: c_int) -> Result<c_int, Errno> {
    // SAFETY: GETPID takes no argument.
    unsafe { semctl(id, n, libc::GETPID, 0) }
}

/// The size of the C `long` that starts a message buffer.
pub const MTYPE_LEN: usize = core::mem::size_of::<c_long>();

/// Copies message number `index` of queue `id` into `buf` (its type as a C long, then its
/// text) without taking it: the text's length.
pub fn msg_copy(id: c_int, index: usize, buf: &mut [u8]) -> Result<usize, Errno> {
    if buf.len() < MTYPE_LEN || !(buf.as_ptr() as usize).is_multiple_of(MTYPE_LEN) {
        return Err(libc::EINVAL);
    }
    let Some(f) = crate::real::msgrcv() else { return Err(libc::ENOSYS) };
    // SAFETY: buf is aligned for the C long and holds its length; the kernel writes at most
    // buf.len() - MTYPE_LEN bytes of text after it.
    let r =
        unsafe { f(id, buf.as_mut_ptr().cast(), buf.len() - MTYPE_LEN, index as c_long, libc::IPC_NOWAIT | MSG_COPY) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as usize)
    }
}

/// msgsnd(id, buf, text_len, IPC_NOWAIT): `buf` is a C long type and the text.
pub fn msg_send(id: c_int, buf: &[u8], text_len: usize) -> Result<(), Errno> {
    if buf.len() < MTYPE_LEN + text_len || !(buf.as_ptr() as usize).is_multiple_of(MTYPE_LEN) {
        return Err(libc::EINVAL);
    }
    let Some(f) = crate::real::msgsnd() else { return Err(libc::ENOSYS) };
    // SAFETY: buf holds the C long type and text_len bytes of text.
    check(unsafe { f(id, buf.as_ptr().cast(), text_len, libc::IPC_NOWAIT) }).map(|_| ())
}

/// Whether our IPC namespace is owned by the user namespace we run in (the one
/// `dmtcp_restart` makes for a group: it makes the IPC namespace there too).
pub fn ipc_ns_is_ours() -> bool {
    let Ok(ipc) = super::open_read(c"/proc/self/ns/ipc") else { return false };
    // SAFETY: NS_GET_USERNS on a namespace fd returns a new fd or -1; no buffer.
    let owner = unsafe { libc::ioctl(ipc, NS_GET_USERNS as _) };
    super::close(ipc);
    if owner < 0 {
        return false;
    }
    let a = super::fstat(owner);
    super::close(owner);
    let b = super::stat(c"/proc/self/ns/user");
    matches!((a, b), (Ok(a), Ok(b)) if a.dev == b.dev && a.ino == b.ino)
}

/// mprotect of a range of our own mappings (an attach this module's caller made again).
pub fn mprotect(addr: usize, len: usize, prot: c_int) -> Result<(), Errno> {
    // SAFETY: changes the protection of a range the caller just mapped for the program, to
    // the protection the program had given it.
    check(unsafe { libc::mprotect(addr as *mut c_void, len, prot) }).map(|_| ())
}

/// The mqueue filesystem's magic (statfs f_type).
const MQUEUE_MAGIC: u64 = 0x1980_0202;

/// Whether `fd` is a POSIX message queue descriptor.
pub fn is_mqueue(fd: c_int) -> bool {
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut st: libc::statfs = unsafe { core::mem::zeroed() };
    // SAFETY: a statfs to fill for an fd of ours.
    let r = unsafe { libc::fstatfs(fd, &mut st) };
    // f_type is 32 bits wide on i686 and 64 on x86_64; the magic fits in 32.
    r == 0 && (st.f_type as u64 & 0xffff_ffff) == MQUEUE_MAGIC
}

/// A queue's attributes: (maxmsg, msgsize, curmsgs).
pub fn mq_getattr(fd: c_int) -> Result<(u64, u64, u64), Errno> {
    // SAFETY: an all-zero mq_attr is a valid value of this plain C struct.
    let mut a: libc::mq_attr = unsafe { core::mem::zeroed() };
    // SAFETY: an mq_attr to fill.
    check(unsafe { libc::mq_getattr(fd, &mut a) })?;
    Ok((a.mq_maxmsg as u64, a.mq_msgsize as u64, a.mq_curmsgs as u64))
}

/// Takes the first message of the queue at `fd` into `buf`, never waiting: (length, priority).
/// Err(ETIMEDOUT) or Err(EAGAIN) when the queue is empty.
pub fn mq_receive_now(fd: c_int, buf: &mut [u8]) -> Result<(usize, u32), Errno> {
    let mut prio: libc::c_uint = 0;
    // An absolute time long past: a blocking descriptor returns at once too.
    let past = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: buf is writable for buf.len() bytes; prio and past are valid.
    let r = unsafe { libc::mq_timedreceive(fd, buf.as_mut_ptr().cast(), buf.len(), &mut prio, &past) };
    if r < 0 {
        Err(errno())
    } else {
        Ok((r as usize, prio))
    }
}

/// Sends `msg` with `prio` on the queue at `fd`, never waiting (Err(ETIMEDOUT/EAGAIN): full).
pub fn mq_send_now(fd: c_int, msg: &[u8], prio: u32) -> Result<(), Errno> {
    let past = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: msg is readable for msg.len() bytes; past is valid.
    check(unsafe { libc::mq_timedsend(fd, msg.as_ptr().cast(), msg.len(), prio, &past) }).map(|_| ())
}

/// mq_open(name, oflag | O_CREAT, mode, {maxmsg, msgsize}): the new descriptor.
pub fn mq_create(name: &core::ffi::CStr, oflag: c_int, mode: u32, maxmsg: u64, msgsize: u64) -> Result<c_int, Errno> {
    // SAFETY: an all-zero mq_attr is a valid value of this plain C struct.
    let mut a: libc::mq_attr = unsafe { core::mem::zeroed() };
    a.mq_maxmsg = maxmsg as _;
    a.mq_msgsize = msgsize as _;
    // SAFETY: a NUL-terminated name; O_CREAT takes the mode and the attributes, which the
    // kernel copies.
    check(unsafe {
        libc::mq_open(name.as_ptr(), oflag | libc::O_CREAT, mode as libc::mode_t, &mut a as *mut libc::mq_attr)
    })
}

/// mq_unlink(name).
pub fn mq_unlink(name: &core::ffi::CStr) -> Result<(), Errno> {
    // SAFETY: a NUL-terminated name.
    check(unsafe { libc::mq_unlink(name.as_ptr()) }).map(|_| ())
}

/// fchmod(fd, mode): the queue's exact mode (mq_open's is cut by the umask).
pub fn fchmod(fd: c_int, mode: u32) -> Result<(), Errno> {
    // SAFETY: plain integers.
    check(unsafe { libc::fchmod(fd, mode as libc::mode_t) }).map(|_| ())
}
