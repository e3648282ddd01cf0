#ifndef ONEO_PROCESS_H
#define ONEO_PROCESS_H

#include <sys/socket.h>

#include <sys/types.h>

/// Starts `path` with `argv` and `envp` via posix_spawn (no fork() in our threaded process).
/// The child gets `channel_fd` as descriptor 3 (or nothing when -1), stdin from /dev/null,
/// `output_fd` as stdout and stderr (ours when -1), every signal at its default disposition with
/// none blocked, its own session (and process group), and no other descriptor of ours. Returns 0
/// and sets *pid, or an errno value.
int oneo_spawn(const char *path, char *const argv[], char *const envp[], int channel_fd, int output_fd, pid_t *pid);

/// prctl(PR_SET_PDEATHSIG): prctl is variadic, which Swift cannot call.
int oneo_set_parent_death_signal(int signal);

/// prctl(PR_SET_NO_NEW_PRIVS): from here on no exec gains privileges (setuid, file capabilities).
int oneo_set_no_new_privs(void);

/// prctl(PR_SET_DUMPABLE): 0 makes /proc/<pid>/mem, environ and ptrace closed to our own uid.
int oneo_set_dumpable(int dumpable);

/// pipe2 with O_CLOEXEC (and O_NONBLOCK when asked): a GNU function Swift does not see.
int oneo_pipe(int fds[2], int nonblocking);

/// accept4(..., SOCK_CLOEXEC): the connection never leaks into a child. Returns the fd or -1.
int oneo_accept(int listener);

/// The uid and pid of a Unix socket's peer (SO_PEERCRED), or an errno value.
int oneo_peer_credentials(int socket_fd, uid_t *uid, pid_t *pid);

/// SO_RCVTIMEO: a blocking read on the socket gives up after `seconds`.
int oneo_set_receive_timeout(int socket_fd, int seconds);

/// SO_SNDTIMEO: a blocking write on the socket gives up after `seconds`.
int oneo_set_send_timeout(int socket_fd, int seconds);

/// Sends `length` bytes with one descriptor attached (SCM_RIGHTS), without blocking and without
/// SIGPIPE. Returns the bytes sent, or -1 with errno set. CMSG_* are macros Swift cannot use.
long oneo_send_with_descriptor(int socket_fd, const void *bytes, unsigned long length, int descriptor);

/// Reads up to `capacity` bytes; a descriptor that came with them (SCM_RIGHTS, close-on-exec) is
/// stored in *descriptor, else -1. More than one attached descriptor: the extras are closed and
/// *descriptor is -2 (a protocol violation). Returns the bytes read, 0 at end, or -1 with errno.
long oneo_receive_with_descriptor(int socket_fd, void *bytes, unsigned long capacity, int *descriptor);

/// socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): one end for each of two children.
int oneo_socketpair(int fds[2]);

/// Connects a TCP socket to `host`:`port` (numeric service), trying each address getaddrinfo
/// gives within `timeout_ms` in all. Returns the connected descriptor (close-on-exec, blocking),
/// or -1 with errno set (EAI errors as EHOSTUNREACH). `address` receives the numeric address.
/// Unless `allow_private`, addresses of this machine or of private networks (loopback,
/// unspecified, link-local, RFC 1918, CGNAT, benchmarking, multicast, IPv6 unique-local, and
/// IPv4 inside IPv6 likewise) are skipped. On failure *refusal is 1 when a private address was
/// skipped, 2 when the name did not resolve, else 0 (errno says why). The name's resolution
/// counts against `timeout_ms` once it returns.
int oneo_connect_tcp(const char *host, int port, int timeout_ms, int allow_private, int *refusal, char *address, int address_length);

/// Whether an address is this machine's or a private network's (see oneo_connect_tcp).
int oneo_address_is_private(const struct sockaddr *address);

/// The program's arguments as the kernel gave them (glibc passes them to ELF constructors): a
/// static Swift runtime reads its own from /proc/self/cmdline, which a jail does not have.
int oneo_argument_count(void);
const char *oneo_argument(int index);

#endif
