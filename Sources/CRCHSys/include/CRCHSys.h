#pragma once
// Syscalls Swift cannot reach through Glibc/Darwin (GNU extensions, ioctl macros).
// Every function returns the syscall's result and leaves errno set, like the call it wraps.
#include <sys/types.h>
#include <stdint.h>

/// rename(2) that fails with EEXIST instead of replacing `newpath`.
/// Linux: renameat2(RENAME_NOREPLACE); Darwin: renamex_np(RENAME_EXCL).
/// Returns -1/EINVAL or ENOSYS where the filesystem cannot do it; callers fall back to link+unlink.
int CRCHSys_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);

/// Clone (reflink) the whole of `srcfd` into the empty file `dstfd`.
/// Linux: ioctl(FICLONE); Darwin: not available on fds (returns -1/ENOTSUP; use CRCHSys_clonefile).
int CRCHSys_ficlone(int dstfd, int srcfd);

/// Darwin clonefile(2) (src path -> new dst path); Linux: -1/ENOTSUP.
int CRCHSys_clonefile(const char *src, const char *dst);

/// In-kernel copy of up to `len` bytes from the current offsets (Linux copy_file_range);
/// Darwin: -1/ENOSYS (callers fall back to read/write).
int64_t CRCHSys_copy_file_range(int infd, int outfd, uint64_t len);

/// Flush every dirty page and the journal of the filesystem holding `fd` (Linux syncfs).
/// Darwin: -1/ENOTSUP (callers fsync each file instead).
int CRCHSys_syncfs(int fd);

/// posix_spawn `path` with `argv`/`envp` (NULL-terminated; envp NULL = inherit), working directory `cwd`
/// (NULL = inherit), fds 0/1/2 taken from `in_fd`/`out_fd`/`err_fd`, all other fds closed, and — if
/// `new_session` — in a new session (its own process group, detached from the caller's terminal).
/// Returns 0 and stores the pid, or an errno value.
int CRCHSys_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                  int in_fd, int out_fd, int err_fd, int new_session, int *pid_out);
