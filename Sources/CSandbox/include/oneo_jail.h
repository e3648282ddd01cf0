#ifndef ONEO_JAIL_H
#define ONEO_JAIL_H

#include <sys/types.h>

/// What one entry of a jail's filesystem is. Targets are absolute paths inside the jail; the
/// entries are made in order, so a parent directory's entry comes before its children's.
enum oneo_jail_mount_kind {
    ONEO_MOUNT_TMPFS = 1,     /* a fresh tmpfs at target, with `options` ("size=8m,mode=0755") */
    ONEO_MOUNT_TMPFS_RO = 2,  /* the same, made read-only once every entry is in place */
    ONEO_MOUNT_BIND_RO = 3,   /* the host's `source` at target, read-only, nosuid, nodev */
    ONEO_MOUNT_BIND_RW = 4,   /* the host's `source` at target, nosuid, nodev */
    ONEO_MOUNT_SYMLINK = 5,   /* a symbolic link at target whose text is `source` */
    ONEO_MOUNT_DIRECTORY = 6, /* an empty directory at target */
    ONEO_MOUNT_DEVICE = 7,    /* the host's device node `source` at target: read-only, nosuid, noexec, not nodev */
};

struct oneo_jail_mount {
    int kind;
    const char *source;
    const char *target;
    const char *options;
};

struct oneo_jail_limit {
    int resource;
    unsigned long long soft;
    unsigned long long hard;
};

/// A jail: namespaces, a filesystem built from nothing, one mapped uid and gid, rlimits, its own
/// session, no_new_privs, and a seccomp filter (classic BPF, built by libseccomp beforehand)
/// installed last before execve.
struct oneo_jail {
    int namespaces;                 /* CLONE_NEW* flags; CLONE_NEWUSER is required */
    unsigned int inner_uid, inner_gid;
    unsigned int outer_uid, outer_gid;
    const char *hostname;           /* with CLONE_NEWUTS, or NULL */
    const struct oneo_jail_mount *mounts;
    int mount_count;
    const struct oneo_jail_limit *limits;
    int limit_count;
    const char *workdir;
    const void *filter;             /* struct sock_filter[filter_length] */
    unsigned short filter_length;
    int stdin_fd, stdout_fd, stderr_fd, extra_fd; /* extra_fd becomes 3; -1 for none (stdin: /dev/null is not assumed) */
    int exec_fd;                    /* >= 0: execveat this descriptor (AT_EMPTY_PATH) instead of execve(path) */
};

/// Starts `path` in a new jail. Returns 0 and sets *pid (in our pid namespace), or an errno value
/// with `error` naming the step that failed ("mount /usr", "seccomp", "execve", ...).
int oneo_jail_spawn(const struct oneo_jail *jail, const char *path, char *const argv[], char *const envp[], pid_t *pid, char *error, int error_length);

/// kill(-pid, SIGKILL) and kill(pid, SIGKILL): the jail's first process and its group. With a
/// pid namespace, the first process's death ends every process in it.
int oneo_jail_kill(pid_t pid);

/// memfd_create with MFD_CLOEXEC: libseccomp 2.5 exports its filter to a descriptor.
int oneo_memfd(const char *name);

/// pidfd_open(2): a descriptor that polls readable when the process ends. -1 with errno set.
int oneo_pidfd_open(pid_t pid);

/// pidfd_send_signal(SIGKILL): the process the pidfd names, never a pid reused since.
int oneo_pidfd_kill(int pidfd);

/// waitid(P_PIDFD): whether the process has ended (*ended = 1) with *status its exit status, or
/// -signal when a signal ended it. `block` waits for the end. Returns 0 or an errno value.
int oneo_pidfd_wait(int pidfd, int block, int *ended, int *status);

/// pipe2 with O_CLOEXEC; the ends a jail gets become its 0..3 (dup2 clears the flag there).
int oneo_jail_pipe(int fds[2]);

#endif
