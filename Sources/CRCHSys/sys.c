#define _GNU_SOURCE
#include "CRCHSys.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#endif
#if defined(__APPLE__)
#include <sys/attr.h>
#include <sys/clonefile.h>
#endif

int CRCHSys_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
#if defined(__linux__)
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, 1 /* RENAME_NOREPLACE */);
#else
    errno = ENOSYS;
    return -1;
#endif
#elif defined(__APPLE__)
    return renameatx_np(olddirfd, oldpath, newdirfd, newpath, RENAME_EXCL);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int CRCHSys_ficlone(int dstfd, int srcfd) {
#if defined(__linux__) && defined(FICLONE)
    return ioctl(dstfd, FICLONE, srcfd);
#else
    (void)dstfd; (void)srcfd;
    errno = ENOTSUP;
    return -1;
#endif
}

int CRCHSys_clonefile(const char *src, const char *dst) {
#if defined(__APPLE__)
    return clonefile(src, dst, CLONE_NOFOLLOW);
#else
    (void)src; (void)dst;
    errno = ENOTSUP;
    return -1;
#endif
}

int64_t CRCHSys_copy_file_range(int infd, int outfd, uint64_t len) {
#if defined(__linux__)
    return (int64_t)copy_file_range(infd, NULL, outfd, NULL, (size_t)len, 0);
#else
    (void)infd; (void)outfd; (void)len;
    errno = ENOSYS;
    return -1;
#endif
}

int CRCHSys_syncfs(int fd) {
#if defined(__linux__)
    return syncfs(fd);
#else
    (void)fd;
    errno = ENOTSUP;
    return -1;
#endif
}

#include <spawn.h>
#include <signal.h>
extern char **environ;

int CRCHSys_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
                  int in_fd, int out_fd, int err_fd, int new_session, int *pid_out) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0) return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) { posix_spawn_file_actions_destroy(&fa); return rc; }
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
#if defined(__APPLE__)
    flags |= POSIX_SPAWN_CLOEXEC_DEFAULT;  // nothing but 0/1/2 survives
#endif
    if (new_session) flags |= POSIX_SPAWN_SETSID;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, flags);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
#if defined(__linux__) && defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);  // no inherited pipes (ssh waits on them)
#endif
    if (rc == 0 && cwd) rc = posix_spawn_file_actions_addchdir_np(&fa, cwd);
    pid_t pid = 0;
    if (rc == 0) rc = posix_spawn(&pid, path, &fa, &attr, argv, envp ? envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc == 0 && pid_out) *pid_out = (int)pid;
    return rc;
}
