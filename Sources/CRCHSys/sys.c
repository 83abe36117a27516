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
