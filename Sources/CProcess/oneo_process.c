#define _GNU_SOURCE
#include "oneo_process.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

enum { CHILD_CHANNEL_FD = 3 };

int oneo_spawn(const char *path, char *const argv[], char *const envp[], int channel_fd, int output_fd, pid_t *pid) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int moved_fd = -1;
    int result;

    /* dup2(3, 3) would leave close-on-exec set, so a channel that already sits on 3 moves first. */
    if (channel_fd == CHILD_CHANNEL_FD) {
        moved_fd = fcntl(channel_fd, F_DUPFD_CLOEXEC, CHILD_CHANNEL_FD + 1);
        if (moved_fd < 0) return errno;
        channel_fd = moved_fd;
    }

    if ((result = posix_spawn_file_actions_init(&actions)) != 0) goto out_fd;
    if ((result = posix_spawnattr_init(&attributes)) != 0) goto out_actions;

    result = posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (result == 0 && output_fd >= 0) result = posix_spawn_file_actions_adddup2(&actions, output_fd, STDOUT_FILENO);
    if (result == 0 && output_fd >= 0) result = posix_spawn_file_actions_adddup2(&actions, output_fd, STDERR_FILENO);
    if (result == 0 && channel_fd >= 0) result = posix_spawn_file_actions_adddup2(&actions, channel_fd, CHILD_CHANNEL_FD);
    /* Nothing else crosses into the child: not the runtime's epoll descriptors (swift-nio opens
       them without close-on-exec), not a descriptor another thread opened a moment ago. */
    if (result == 0) result = posix_spawn_file_actions_addclosefrom_np(&actions, channel_fd >= 0 ? CHILD_CHANNEL_FD + 1 : CHILD_CHANNEL_FD);

    /* Our runtime ignores SIGPIPE and its threads block signals; a child starts clean (pgbench,
       for one, never ends a timed run if SIGALRM arrives blocked). */
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    if (result == 0) result = posix_spawnattr_setsigdefault(&attributes, &all);
    if (result == 0) result = posix_spawnattr_setsigmask(&attributes, &none);
    /* A session of its own (and so a process group of its own): no controlling terminal shared
       with an operator's shell, so no TIOCSTI into it. */
    if (result == 0) result = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID);
    if (result == 0) result = posix_spawn(pid, path, &actions, &attributes, argv, envp);

    posix_spawnattr_destroy(&attributes);
out_actions:
    posix_spawn_file_actions_destroy(&actions);
out_fd:
    if (moved_fd >= 0) close(moved_fd);
    return result;
}

int oneo_set_parent_death_signal(int signal) {
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0, 0, 0) != 0) return errno;
    return 0;
}

int oneo_set_no_new_privs(void) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) != 0) return errno;
    return 0;
}

int oneo_set_dumpable(int dumpable) {
    if (prctl(PR_SET_DUMPABLE, (unsigned long)dumpable, 0, 0, 0) != 0) return errno;
    return 0;
}

int oneo_pipe(int fds[2], int nonblocking) {
    if (pipe2(fds, O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0)) != 0) return errno;
    return 0;
}

int oneo_accept(int listener) {
    return accept4(listener, NULL, NULL, SOCK_CLOEXEC);
}

int oneo_peer_credentials(int socket_fd, uid_t *uid, pid_t *pid) {
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(socket_fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return errno;
    *uid = credentials.uid;
    *pid = credentials.pid;
    return 0;
}

int oneo_set_receive_timeout(int socket_fd, int seconds) {
    struct timeval timeout = { .tv_sec = seconds, .tv_usec = 0 };
    if (setsockopt(socket_fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0) return errno;
    return 0;
}

int oneo_set_send_timeout(int socket_fd, int seconds) {
    struct timeval timeout = { .tv_sec = seconds, .tv_usec = 0 };
    return setsockopt(socket_fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) == 0 ? 0 : errno;
}

long oneo_send_with_descriptor(int socket_fd, const void *bytes, unsigned long length, int descriptor) {
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec vector = { .iov_base = (void *)bytes, .iov_len = length };
    struct msghdr message = { .msg_iov = &vector, .msg_iovlen = 1 };
    memset(&control, 0, sizeof control);
    message.msg_control = control.buffer;
    message.msg_controllen = sizeof control.buffer;
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &descriptor, sizeof(int));
    return (long)sendmsg(socket_fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
}

long oneo_receive_with_descriptor(int socket_fd, void *bytes, unsigned long capacity, int *descriptor) {
    union {
        char buffer[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec vector = { .iov_base = bytes, .iov_len = capacity };
    struct msghdr message = { .msg_iov = &vector, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof control.buffer };
    *descriptor = -1;
    ssize_t received = recvmsg(socket_fd, &message, MSG_CMSG_CLOEXEC);
    if (received < 0) return -1;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t index = 0; index < count; index++) {
            int passed;
            memcpy(&passed, CMSG_DATA(header) + index * sizeof(int), sizeof(int));
            if (*descriptor == -1) {
                *descriptor = passed;
            } else {
                close(passed);
                if (*descriptor >= 0) close(*descriptor);
                *descriptor = -2;
            }
        }
    }
    /* Descriptors cut off for lack of room were closed by the kernel; what we hold is not all. */
    if ((message.msg_flags & MSG_CTRUNC) && *descriptor != -1) {
        if (*descriptor >= 0) close(*descriptor);
        *descriptor = -2;
    }
    return (long)received;
}

int oneo_socketpair(int fds[2]) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return errno;
    return 0;
}

static int saved_argc;
static char **saved_argv;

__attribute__((constructor)) static void oneo_save_arguments(int argc, char **argv, char **envp) {
    (void)envp;
    saved_argc = argc;
    saved_argv = argv;
}

int oneo_argument_count(void) {
    return saved_argc;
}

const char *oneo_argument(int index) {
    return index >= 0 && index < saved_argc ? saved_argv[index] : NULL;
}

static int ipv4_is_private(uint32_t host_order) {
    uint8_t a = (uint8_t)(host_order >> 24), b = (uint8_t)(host_order >> 16), c = (uint8_t)(host_order >> 8);
    return a == 0 || a == 10 || a == 127 || (a == 169 && b == 254) || (a == 172 && (b & 0xF0) == 16)
        || (a == 192 && b == 168) || (a == 100 && (b & 0xC0) == 64) || a >= 224
        || (a == 192 && b == 0 && c == 0) || (a == 198 && (b & 0xFE) == 18);
}

static uint32_t ipv4_at(const uint8_t *bytes) {
    return ((uint32_t)bytes[0] << 24) | ((uint32_t)bytes[1] << 16) | ((uint32_t)bytes[2] << 8) | bytes[3];
}

int oneo_address_is_private(const struct sockaddr *address) {
    if (address->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
        return ipv4_is_private(ntohl(v4->sin_addr.s_addr));
    }
    if (address->sa_family == AF_INET6) {
        const struct in6_addr *v6 = &((const struct sockaddr_in6 *)address)->sin6_addr;
        const uint8_t *bytes = v6->s6_addr;
        /* IPv4 inside IPv6: mapped, compatible, NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry
           an IPv4 address that must pass the same test. */
        if (IN6_IS_ADDR_V4MAPPED(v6) || IN6_IS_ADDR_V4COMPAT(v6)) return ipv4_is_private(ipv4_at(bytes + 12));
        static const uint8_t nat64[12] = { 0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };
        if (memcmp(bytes, nat64, sizeof nat64) == 0) return ipv4_is_private(ipv4_at(bytes + 12));
        if (bytes[0] == 0x20 && bytes[1] == 0x02) return ipv4_is_private(ipv4_at(bytes + 2));
        /* Local-use NAT64 (64:ff9b:1::/48) and Teredo (2001::/32) reach whatever they embed. */
        if (bytes[0] == 0x00 && bytes[1] == 0x64 && bytes[2] == 0xff && bytes[3] == 0x9b && bytes[4] == 0x00 && bytes[5] == 0x01) return 1;
        if (bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x00 && bytes[3] == 0x00) return 1;
        return IN6_IS_ADDR_UNSPECIFIED(v6) || IN6_IS_ADDR_LOOPBACK(v6) || IN6_IS_ADDR_LINKLOCAL(v6) || IN6_IS_ADDR_SITELOCAL(v6)
            || IN6_IS_ADDR_MULTICAST(v6) || (bytes[0] & 0xFE) == 0xFC;
    }
    return 1;
}

int oneo_connect_tcp(const char *host, int port, int timeout_ms, int allow_private, int *refusal, char *address, int address_length) {
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    *refusal = 0;
    /* The name's resolution counts against the time too (once it returns: glibc's resolver
       has no deadline of its own; its timeouts come from resolv.conf). */
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
    struct addrinfo *found = NULL;
    if (getaddrinfo(host, service, &hints, &found) != 0 || found == NULL) {
        *refusal = 2;
        errno = EHOSTUNREACH;
        return -1;
    }
    int result = -1, last = ECONNREFUSED;
    for (struct addrinfo *entry = found; entry != NULL && result < 0; entry = entry->ai_next) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (spent >= timeout_ms) { last = ETIMEDOUT; break; }
        if (!allow_private && oneo_address_is_private(entry->ai_addr)) {
            *refusal = 1;
            last = EACCES;
            continue;
        }
        int fd = socket(entry->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) { last = errno; continue; }
        if (connect(fd, entry->ai_addr, entry->ai_addrlen) != 0 && errno != EINPROGRESS) {
            last = errno;
            close(fd);
            continue;
        }
        struct pollfd waiting = { .fd = fd, .events = POLLOUT };
        int ready;
        do {
            clock_gettime(CLOCK_MONOTONIC, &now);
            spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
            ready = poll(&waiting, 1, spent >= timeout_ms ? 0 : (int)(timeout_ms - spent));
        } while (ready < 0 && errno == EINTR);
        int error = 0;
        socklen_t length = sizeof error;
        if (ready <= 0) error = ready == 0 ? ETIMEDOUT : errno;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
        if (error != 0) {
            last = error;
            close(fd);
            continue;
        }
        int flags = fcntl(fd, F_GETFL);
        if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        if (address != NULL && address_length > 0) {
            address[0] = '\0';
            getnameinfo(entry->ai_addr, entry->ai_addrlen, address, (socklen_t)address_length, NULL, 0, NI_NUMERICHOST);
        }
        result = fd;
    }
    freeaddrinfo(found);
    if (result < 0) errno = last;
    return result;
}
