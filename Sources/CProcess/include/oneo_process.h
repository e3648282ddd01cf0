#ifndef ONEO_PROCESS_H
#define ONEO_PROCESS_H

#include <sys/types.h>

/// Starts `path` with `argv` and `envp` via posix_spawn (no fork() in our threaded process).
/// The child gets `channel_fd` as descriptor 3 (or nothing when -1), stdin from /dev/null,
/// `output_fd` as stdout and stderr (ours when -1), every signal at its default disposition with
/// none blocked, and its own process group. Returns 0 and sets *pid, or an errno value.
int oneo_spawn(const char *path, char *const argv[], char *const envp[], int channel_fd, int output_fd, pid_t *pid);

/// prctl(PR_SET_PDEATHSIG): prctl is variadic, which Swift cannot call.
int oneo_set_parent_death_signal(int signal);

#endif
