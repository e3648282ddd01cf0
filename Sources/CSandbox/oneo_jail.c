#define _GNU_SOURCE
#include "oneo_jail.h"

#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The jail's root is assembled under this directory of our new mount namespace, then made the
   root with pivot_root. The host's /tmp is not touched: the tmpfs covers it only in the jail's
   namespace, and a bind source may not lie under it (the policy parser refuses that). */
static const char STAGING[] = "/tmp";
enum { STACK_SIZE = 256 * 1024, PATH_LENGTH = 4096 };

static void number(char *out, size_t capacity, unsigned int value);

struct failure {
    int error;
    char step[120];
};

struct child_arguments {
    const struct oneo_jail *jail;
    const char *path;
    char *const *argv;
    char *const *envp;
    int sync_fd;   /* read end: the parent has written our uid and gid maps */
    int sync_write_fd; /* the parent's end, which our copy must not hold open */
    int report_fd; /* write end, close-on-exec: a failure before execve is written here */
};

/* Only system calls and plain byte copies from here to execve: the child of a threaded process
   must not take a lock another thread held at clone time (malloc, stdio, locale). */
static size_t length(const char *text) {
    size_t count = 0;
    while (text[count] != '\0') count++;
    return count;
}

static void append(char *out, size_t capacity, const char *text) {
    size_t used = length(out);
    size_t add = length(text);
    if (used + add + 1 > capacity) add = capacity - used - 1;
    memcpy(out + used, text, add);
    out[used + add] = '\0';
}

static void staged(char *out, const char *target) {
    out[0] = '\0';
    append(out, PATH_LENGTH, STAGING);
    if (!(target[0] == '/' && target[1] == '\0')) append(out, PATH_LENGTH, target);
}

static int fail(int report_fd, const char *step, const char *detail) {
    struct failure failure;
    failure.error = errno;
    failure.step[0] = '\0';
    append(failure.step, sizeof failure.step, step);
    if (detail != NULL) {
        append(failure.step, sizeof failure.step, " ");
        append(failure.step, sizeof failure.step, detail);
    }
    (void)!write(report_fd, &failure, sizeof failure);
    _exit(127);
}

/* A bind mount's read-only remount must keep the flags the source mount has locked (nosuid,
   nodev, noexec, ...), or a user namespace refuses it. */
static unsigned long locked_flags(const char *path) {
    struct statvfs info;
    unsigned long flags = 0;
    if (statvfs(path, &info) != 0) return 0;
    if (info.f_flag & ST_NOSUID) flags |= MS_NOSUID;
    if (info.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (info.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    if (info.f_flag & ST_NOATIME) flags |= MS_NOATIME;
    if (info.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (info.f_flag & ST_RELATIME) flags |= MS_RELATIME;
    if (info.f_flag & ST_RDONLY) flags |= MS_RDONLY;
    return flags;
}

static void build_filesystem(const struct oneo_jail *jail, int report_fd) {
    char path[PATH_LENGTH];
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail(report_fd, "make mounts private", NULL);
    /* Every bind source is opened (O_PATH) before the staging tmpfs covers /tmp, in this mount
       namespace, and bound through its descriptor: a source may then lie anywhere (a database
       socket under a test directory in /tmp), and what is bound is what was opened. */
    int sources[jail->mount_count > 0 ? jail->mount_count : 1];
    for (int index = 0; index < jail->mount_count; index++) {
        const struct oneo_jail_mount *entry = &jail->mounts[index];
        sources[index] = -1;
        if (entry->kind == ONEO_MOUNT_BIND_RO || entry->kind == ONEO_MOUNT_BIND_RW || entry->kind == ONEO_MOUNT_DEVICE) {
            sources[index] = open(entry->source, O_PATH | O_CLOEXEC);
            if (sources[index] < 0) fail(report_fd, "open bind source", entry->source);
        }
    }
    for (int index = 0; index < jail->mount_count; index++) {
        const struct oneo_jail_mount *entry = &jail->mounts[index];
        char source_path[64] = "/proc/self/fd/";
        if (sources[index] >= 0) number(source_path, sizeof source_path, (unsigned int)sources[index]);
        staged(path, entry->target);
        int is_root = entry->target[0] == '/' && entry->target[1] == '\0';
        switch (entry->kind) {
        case ONEO_MOUNT_TMPFS:
        case ONEO_MOUNT_TMPFS_RO:
            if (!is_root && mkdir(path, 0755) != 0 && errno != EEXIST) fail(report_fd, "mkdir", entry->target);
            /* No program is run from a tmpfs: what the code writes in /work is data. */
            if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, entry->options) != 0) fail(report_fd, "mount tmpfs", entry->target);
            break;
        case ONEO_MOUNT_BIND_RO:
        case ONEO_MOUNT_BIND_RW: {
            struct stat source;
            if (fstat(sources[index], &source) != 0) fail(report_fd, "stat bind source", entry->source);
            if (S_ISDIR(source.st_mode)) {
                if (mkdir(path, 0755) != 0 && errno != EEXIST) fail(report_fd, "mkdir", entry->target);
            } else {
                int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
                if (fd < 0) fail(report_fd, "create bind target", entry->target);
                close(fd);
            }
            /* Not recursive: a host mount below the source stays out (the read-only remount below
               covers this one mount only). */
            if (mount(source_path, path, NULL, MS_BIND, NULL) != 0) fail(report_fd, "bind", entry->target);
            unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | locked_flags(path);
            if (entry->kind == ONEO_MOUNT_BIND_RO) flags |= MS_RDONLY;
            if (mount(NULL, path, NULL, flags, NULL) != 0) fail(report_fd, "remount bind", entry->target);
            break;
        }
        case ONEO_MOUNT_DEVICE: {
            /* A character device (/dev/null): usable only on a mount without nodev; read-only
               (a device is still written through a read-only mount), nosuid, noexec. */
            struct stat source;
            if (fstat(sources[index], &source) != 0 || !S_ISCHR(source.st_mode)) {
                if (errno == 0) errno = EINVAL;
                fail(report_fd, "not a character device", entry->source);
            }
            int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
            if (fd < 0) fail(report_fd, "create device target", entry->target);
            close(fd);
            if (mount(source_path, path, NULL, MS_BIND, NULL) != 0) fail(report_fd, "bind", entry->target);
            unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC | (locked_flags(path) & ~(unsigned long)MS_NODEV);
            if (mount(NULL, path, NULL, flags, NULL) != 0) fail(report_fd, "remount device", entry->target);
            break;
        }
        case ONEO_MOUNT_SYMLINK:
            if (symlink(entry->source, path) != 0) fail(report_fd, "symlink", entry->target);
            break;
        case ONEO_MOUNT_DIRECTORY:
            if (mkdir(path, 0755) != 0 && errno != EEXIST) fail(report_fd, "mkdir", entry->target);
            break;
        default:
            errno = EINVAL;
            fail(report_fd, "unknown mount kind for", entry->target);
        }
    }
    for (int index = 0; index < jail->mount_count; index++) {
        if (sources[index] >= 0) close(sources[index]);
    }
    char old[PATH_LENGTH];
    staged(old, "/.old-root");
    if (mkdir(old, 0700) != 0) fail(report_fd, "mkdir", "/.old-root");
    if (syscall(SYS_pivot_root, STAGING, old) != 0) fail(report_fd, "pivot_root", NULL);
    if (chdir("/") != 0) fail(report_fd, "chdir", "/");
    if (umount2("/.old-root", MNT_DETACH) != 0) fail(report_fd, "detach the host's root", NULL);
    if (rmdir("/.old-root") != 0) fail(report_fd, "rmdir", "/.old-root");
    for (int index = 0; index < jail->mount_count; index++) {
        const struct oneo_jail_mount *entry = &jail->mounts[index];
        if (entry->kind != ONEO_MOUNT_TMPFS_RO) continue;
        if (mount("tmpfs", entry->target, "tmpfs", MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, entry->options) != 0) {
            fail(report_fd, "remount read-only", entry->target);
        }
    }
}

static int child_main(void *raw) {
    struct child_arguments *arguments = raw;
    const struct oneo_jail *jail = arguments->jail;
    int report_fd = arguments->report_fd;
    char ready;

    /* Die with the executor; and when it is already gone, do not go on alone (the read below
       sees the end of the pipe once our copy of its write end is closed). */
    close(arguments->sync_write_fd);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(report_fd, "prctl PDEATHSIG", NULL);
    if (read(arguments->sync_fd, &ready, 1) != 1) {
        errno = ECHILD;
        fail(report_fd, "wait for the uid map", NULL);
    }
    close(arguments->sync_fd);

    /* The one mapped identity first: files the jail's root is built of must belong to a mapped
       id. Our capabilities in the new namespace stay (no id here was its root) until the
       bounding set is dropped below and execve clears the rest. Supplementary groups go first,
       while we may still drop them. */
    /* The raw system calls, not glibc's: those signal every thread of the process to change
       with it, and take locks a thread of the parent may have held at clone time. */
    if (syscall(SYS_setgroups, 0, NULL) != 0 && errno != EPERM) fail(report_fd, "setgroups", NULL);
    if (syscall(SYS_setresgid, jail->inner_gid, jail->inner_gid, jail->inner_gid) != 0) fail(report_fd, "setresgid", NULL);
    if (syscall(SYS_setresuid, jail->inner_uid, jail->inner_uid, jail->inner_uid) != 0) fail(report_fd, "setresuid", NULL);
    /* A change of identity clears the parent-death signal: armed again. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(report_fd, "prctl PDEATHSIG", NULL);

    build_filesystem(jail, report_fd);
    if ((jail->namespaces & CLONE_NEWUTS) && jail->hostname != NULL) {
        if (sethostname(jail->hostname, length(jail->hostname)) != 0) fail(report_fd, "sethostname", NULL);
    }
    if (jail->workdir != NULL && chdir(jail->workdir) != 0) fail(report_fd, "chdir", jail->workdir);
    /* Capabilities of the namespace's creator: none survive into the program. */
    for (int capability = 0; capability < 64; capability++) {
        if (prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 && errno != EINVAL && errno != EPERM) fail(report_fd, "drop capability", NULL);
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) fail(report_fd, "clear ambient capabilities", NULL);

    for (int index = 0; index < jail->limit_count; index++) {
        struct rlimit limit = { .rlim_cur = jail->limits[index].soft, .rlim_max = jail->limits[index].hard };
        if (setrlimit(jail->limits[index].resource, &limit) != 0) fail(report_fd, "setrlimit", NULL);
    }
    if (setsid() < 0) fail(report_fd, "setsid", NULL);

    int fds[4] = { jail->stdin_fd, jail->stdout_fd, jail->stderr_fd, jail->extra_fd };
    /* Each descriptor moves above the four targets first, so dup2 onto 0..3 never overwrites a
       source still to be moved. */
    for (int index = 0; index < 4; index++) {
        if (fds[index] < 0) continue;
        int moved = fcntl(fds[index], F_DUPFD_CLOEXEC, 10);
        if (moved < 0) fail(report_fd, "move descriptor", NULL);
        fds[index] = moved;
    }
    if (report_fd < 10) {
        int moved = fcntl(report_fd, F_DUPFD_CLOEXEC, 10);
        if (moved < 0) fail(report_fd, "move report descriptor", NULL);
        report_fd = moved;
    }
    for (int index = 0; index < 4; index++) {
        if (fds[index] < 0) {
            close(index);
            continue;
        }
        if (dup2(fds[index], index) < 0) fail(report_fd, "dup2", NULL);
    }
    /* Nothing else of the executor's crosses: the report pipe is close-on-exec. */
    for (int fd = 4; fd < 1024; fd++) {
        if (fd != report_fd && fd != jail->exec_fd) close(fd);
    }
    if (syscall(SYS_close_range, 1024, ~0U, 0) != 0 && errno != ENOSYS) fail(report_fd, "close_range", NULL);

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(report_fd, "no_new_privs", NULL);
    if (jail->filter != NULL) {
        struct sock_fprog program = { .len = jail->filter_length, .filter = (struct sock_filter *)jail->filter };
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) fail(report_fd, "seccomp", NULL);
    }
    if (jail->exec_fd >= 0) {
        /* The executor's own program, from the descriptor it opened on itself: nothing of the
           host's filesystem needs to be in the jail for it (and the descriptor is close-on-exec). */
        syscall(SYS_execveat, jail->exec_fd, "", arguments->argv, arguments->envp, AT_EMPTY_PATH);
        fail(report_fd, "execveat", arguments->path);
    }
    execve(arguments->path, arguments->argv, arguments->envp);
    fail(report_fd, "execve", arguments->path);
    return 127;
}

static void number(char *out, size_t capacity, unsigned int value) {
    char digits[16];
    int count = 0;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    char text[16];
    int position = 0;
    while (count > 0) text[position++] = digits[--count];
    text[position] = '\0';
    append(out, capacity, text);
}

static int write_file(pid_t pid, const char *name, const char *text) {
    char path[64] = "/proc/";
    number(path, sizeof path, (unsigned int)pid);
    append(path, sizeof path, "/");
    append(path, sizeof path, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    ssize_t written = write(fd, text, length(text));
    int result = written == (ssize_t)length(text) ? 0 : (written < 0 ? errno : EIO);
    close(fd);
    return result;
}


/* "inner outer 1": one id inside the namespace, the one outside it stands for. */
static int write_map(pid_t pid, const char *name, unsigned int inner, unsigned int outer) {
    char map[64] = "";
    number(map, sizeof map, inner);
    append(map, sizeof map, " ");
    number(map, sizeof map, outer);
    append(map, sizeof map, " 1\n");
    return write_file(pid, name, map);
}

static void copy_step(char *error, int error_length, const char *text) {
    if (error == NULL || error_length <= 0) return;
    error[0] = '\0';
    append(error, (size_t)error_length, text);
}

int oneo_jail_spawn(const struct oneo_jail *jail, const char *path, char *const argv[], char *const envp[], pid_t *pid, char *error, int error_length) {
    int sync_pipe[2], report_pipe[2];
    if (!(jail->namespaces & CLONE_NEWUSER)) {
        copy_step(error, error_length, "a jail needs a user namespace");
        return EINVAL;
    }
    if (pipe2(sync_pipe, O_CLOEXEC) != 0) return errno;
    if (pipe2(report_pipe, O_CLOEXEC) != 0) {
        int saved = errno;
        close(sync_pipe[0]);
        close(sync_pipe[1]);
        return saved;
    }
    char *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        int saved = errno;
        close(sync_pipe[0]);
        close(sync_pipe[1]);
        close(report_pipe[0]);
        close(report_pipe[1]);
        return saved;
    }
    struct child_arguments arguments = {
        .jail = jail, .path = path, .argv = argv, .envp = envp, .sync_fd = sync_pipe[0], .sync_write_fd = sync_pipe[1], .report_fd = report_pipe[1],
    };
    pid_t child = clone(child_main, stack + STACK_SIZE, jail->namespaces | SIGCHLD, &arguments);
    int saved = errno;
    munmap(stack, STACK_SIZE);
    close(sync_pipe[0]);
    close(report_pipe[1]);
    if (child < 0) {
        close(sync_pipe[1]);
        close(report_pipe[0]);
        copy_step(error, error_length, "clone");
        return saved;
    }

    /* One identity inside, mapped to the one outside. An unprivileged executor may map only its
       own ids, and must deny setgroups first. */
    int result = 0;
    if (getuid() != 0) result = write_file(child, "setgroups", "deny");
    if (result == 0) result = write_map(child, "gid_map", jail->inner_gid, jail->outer_gid);
    if (result == 0) result = write_map(child, "uid_map", jail->inner_uid, jail->outer_uid);
    if (result != 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        close(sync_pipe[1]);
        close(report_pipe[0]);
        copy_step(error, error_length, "write the uid and gid maps");
        return result;
    }
    char go = 1;
    (void)!write(sync_pipe[1], &go, 1);
    close(sync_pipe[1]);

    /* The child builds its root and execs within milliseconds; one that is stuck for 10 s is
       killed rather than waited on. */
    struct failure failure;
    ssize_t got = -1;
    struct pollfd ready = { .fd = report_pipe[0], .events = POLLIN };
    int polled;
    do {
        polled = poll(&ready, 1, 10000);
    } while (polled < 0 && errno == EINTR);
    if (polled == 1) {
        do {
            got = read(report_pipe[0], &failure, sizeof failure);
        } while (got < 0 && errno == EINTR);
    } else {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        close(report_pipe[0]);
        copy_step(error, error_length, "the jail did not start within 10 s");
        return ETIMEDOUT;
    }
    close(report_pipe[0]);
    if (got == (ssize_t)sizeof failure) {
        waitpid(child, NULL, 0);
        failure.step[sizeof failure.step - 1] = '\0';
        copy_step(error, error_length, failure.step);
        return failure.error != 0 ? failure.error : EIO;
    }
    *pid = child;
    return 0;
}

int oneo_jail_kill(pid_t pid) {
    if (pid <= 1) return EINVAL;
    kill(-pid, SIGKILL);
    return kill(pid, SIGKILL) == 0 ? 0 : errno;
}

int oneo_memfd(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

int oneo_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int oneo_jail_pipe(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : errno;
}

int oneo_pidfd_wait(int pidfd, int block, int *ended, int *status) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    *ended = 0;
    if (waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED | (block ? 0 : WNOHANG)) != 0) return errno;
    if (info.si_pid == 0) return 0;
    *ended = 1;
    *status = info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
    return 0;
}

int oneo_pidfd_kill(int pidfd) {
    return syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0 ? 0 : errno;
}
