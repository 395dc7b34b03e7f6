/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup: cgroup v2 per container (see cgroup.h).
 *
 * Delegation follows the cgroup v2 rules: controllers are enabled top-down through
 * cgroup.subtree_control, and a non-root cgroup that hands controllers to children may hold
 * no processes itself. If the agent's own cgroup holds only the agent, the agent moves into a
 * leaf (corral-agent-<node>) first; if it holds other processes too (an interactive shell),
 * limits are reported unavailable instead of moving someone else's processes.
 */
#include "cgroup.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUBSYS "cgroup"
#define CPU_PERIOD_US 100000

/* snprintf for text whose truncation is acceptable or checked by the caller (gcc cannot
 * second-guess it through the va_list). Returns 0, or -ENAMETOOLONG when out was too small. */
static int fmt(char *out, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));

static int fmt(char *out, size_t len, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(out, len, f, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int write_file(const char *dir, const char *file, const char *text)
{
    char path[1024];
    fmt(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, text, strlen(text));
    int rc = n == (ssize_t)strlen(text) ? 0 : n < 0 ? -errno : -EIO;
    close(fd);
    return rc;
}

static int read_file(const char *dir, const char *file, char *out, size_t len)
{
    char path[1024];
    fmt(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, out, len - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    out[n] = '\0';
    return (int)n;
}

static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ' ' || p[-1] == '+') &&
            (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
            return true;
    return false;
}

/* The cgroup2 mount point, from /proc/self/mountinfo. Returns 0 or -ENOENT. */
static int find_mount(char *out, size_t len)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return -ENOENT;
    char line[4096];
    int rc = -ENOENT;
    while (rc < 0 && fgets(line, sizeof(line), f)) {
        char *sep = strstr(line, " - ");
        char mnt[1024];
        if (sep && strncmp(sep, " - cgroup2 ", 11) == 0 &&
            sscanf(line, "%*s %*s %*s %*s %1023s", mnt) == 1) {
            fmt(out, len, "%s", mnt);
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

/* The agent's own cgroup v2 path ("/" or "/system.slice/x"), from /proc/self/cgroup. */
static int own_cgroup(char *out, size_t len)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return -ENOENT;
    char line[4096];
    int rc = -ENOENT;
    while (rc < 0 && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "0::", 3) != 0)
            continue;
        line[strcspn(line, "\n")] = '\0';
        fmt(out, len, "%s", line + 3);
        rc = 0;
    }
    fclose(f);
    return rc;
}

static bool only_me(const char *dir)
{
    char buf[256];
    if (read_file(dir, "cgroup.procs", buf, sizeof(buf)) < 0)
        return false;
    return atol(buf) == (long)getpid() &&
           !strchr(strchr(buf, '\n') ? strchr(buf, '\n') + 1 : "", '\n');
}

/* Enables +cpu +memory (those present) in dir's subtree_control. */
static int enable_controllers(const struct corral_cgroups *cg, const char *dir)
{
    if (!cg->cpu && !cg->memory)
        return 0;
    char want[32];
    fmt(want, sizeof(want), "%s%s%s", cg->cpu ? "+cpu" : "", cg->cpu && cg->memory ? " " : "",
        cg->memory ? "+memory" : "");
    return write_file(dir, "cgroup.subtree_control", want);
}

/* Moves the agent into base/corral-agent-<node> so that base may delegate controllers. */
static int move_self_to_leaf(const char *base, const char *node)
{
    char leaf[1024], pid[32];
    fmt(leaf, sizeof(leaf), "%s/corral-agent-%s", base, node);
    if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
        return -errno;
    fmt(pid, sizeof(pid), "%ld", (long)getpid());
    return write_file(leaf, "cgroup.procs", pid);
}

static void delegate(struct corral_cgroups *cg, const char *base, const char *node)
{
    int rc = enable_controllers(cg, base);
    if (rc == -EBUSY && only_me(base) && move_self_to_leaf(base, node) == 0)
        rc = enable_controllers(cg, base);
    if (rc < 0) {
        fmt(cg->status, sizeof(cg->status),
            "cannot enable cpu/memory in %s/cgroup.subtree_control (%s): run the agent in a "
            "cgroup of its own; containers run without cpu/memory limits",
            base, strerror(-rc));
        cg->cpu = cg->memory = false;
    }
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_type != DT_DIR || de->d_name[0] == '.')
            continue;
        char sub[1024];
        fmt(sub, sizeof(sub), "%s/%s", dir, de->d_name);
        remove_tree(sub);
    }
    closedir(d);
    corral_cgroup_kill(dir);
    for (int i = 0; i < 50 && rmdir(dir) < 0 && errno == EBUSY; i++)
        usleep(10000); /* killed processes take a moment to leave */
}

static void describe(struct corral_cgroups *cg, const char *mount)
{
    if (cg->status[0])
        return;
    if (cg->cpu && cg->memory)
        fmt(cg->status, sizeof(cg->status), "cgroup v2 at %s: cpu and memory limits enforced",
            cg->root);
    else
        fmt(cg->status, sizeof(cg->status),
            "cgroup v2 at %s lacks the %s controller%s (on this host %s bound to cgroup v1 or "
            "not delegated): containers run without %s limits",
            mount,
            !cg->cpu && !cg->memory ? "cpu and memory"
            : !cg->cpu              ? "cpu"
                                    : "memory",
            !cg->cpu && !cg->memory ? "s" : "", !cg->cpu && !cg->memory ? "they are" : "it is",
            !cg->cpu && !cg->memory ? "cpu/memory"
            : !cg->cpu              ? "cpu"
                                    : "memory");
}

static void setup(struct corral_cgroups *cg, const char *node_name)
{
    char mount[512], own[512], base[1100], controllers[256] = "";
    if (find_mount(mount, sizeof(mount)) < 0 || own_cgroup(own, sizeof(own)) < 0) {
        fmt(cg->status, sizeof(cg->status),
            "no cgroup v2 hierarchy is mounted: containers run without cgroups "
            "(no cpu/memory limits; a process group is all that groups them)");
        return;
    }
    fmt(base, sizeof(base), "%s%s", mount, strcmp(own, "/") == 0 ? "" : own);
    if (access(base, W_OK) < 0) {
        fmt(cg->status, sizeof(cg->status),
            "cgroup v2 at %s is not writable (%s): containers run without cgroups", base,
            strerror(errno));
        return;
    }
    read_file(base, "cgroup.controllers", controllers, sizeof(controllers));
    cg->cpu = has_word(controllers, "cpu");
    cg->memory = has_word(controllers, "memory");
    if (strcmp(own, "/") != 0)
        delegate(cg, base, node_name);
    fmt(cg->root, sizeof(cg->root), "%s/corral-%s", base, node_name);
    if (access(cg->root, F_OK) == 0) {
        corral_warn(SUBSYS, "removing %s left by an earlier run (and killing what ran there)",
                    cg->root);
        remove_tree(cg->root);
    }
    if (mkdir(cg->root, 0755) < 0 && errno != EEXIST) {
        fmt(cg->status, sizeof(cg->status),
            "cannot create %s (%s): containers run without "
            "cgroups",
            cg->root, strerror(errno));
        cg->cpu = cg->memory = false;
        return;
    }
    cg->usable = true;
    char probe[1100];
    fmt(probe, sizeof(probe), "%s/cgroup.kill", cg->root);
    cg->kill = access(probe, F_OK) == 0;
    if (enable_controllers(cg, cg->root) < 0)
        cg->cpu = cg->memory = false;
    describe(cg, mount);
}

void corral_cgroup_init(struct corral_cgroups *cg, const char *node_name)
{
    memset(cg, 0, sizeof(*cg));
    setup(cg, node_name);
    if (cg->cpu && cg->memory)
        corral_info(SUBSYS, "%s", cg->status);
    else
        corral_warn(SUBSYS, "%s", cg->status);
}

void corral_cgroup_cpu_max(int64_t milli, char *out, size_t len)
{
    if (milli <= 0) {
        fmt(out, len, "max %d", CPU_PERIOD_US);
        return;
    }
    int64_t quota = milli * CPU_PERIOD_US / 1000;
    if (quota < 1000)
        quota = 1000; /* the kernel's minimum quota is 1 ms */
    fmt(out, len, "%lld %d", (long long)quota, CPU_PERIOD_US);
}

int corral_cgroup_create(const struct corral_cgroups *cg, const char *pod_uid,
                         const char *container, int64_t cpu_milli, int64_t memory_bytes, char *out,
                         size_t len)
{
    if (!cg->usable)
        return -ENOTSUP;
    char pod[1024];
    fmt(pod, sizeof(pod), "%s/pod-%s", cg->root, pod_uid);
    if (mkdir(pod, 0755) < 0 && errno != EEXIST)
        return -errno;
    enable_controllers(cg, pod);
    if (fmt(out, len, "%s/%s", pod, container) < 0)
        return -ENAMETOOLONG;
    if (mkdir(out, 0755) < 0 && errno != EEXIST)
        return -errno;
    char line[64];
    if (cg->cpu) {
        corral_cgroup_cpu_max(cpu_milli, line, sizeof(line));
        int rc = write_file(out, "cpu.max", line);
        if (rc < 0)
            return rc;
    }
    if (cg->memory) {
        fmt(line, sizeof(line), memory_bytes > 0 ? "%lld" : "max", (long long)memory_bytes);
        int rc = write_file(out, "memory.max", line);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int corral_cgroup_open_procs(const char *path)
{
    char file[1100];
    fmt(file, sizeof(file), "%s/cgroup.procs", path);
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int corral_cgroup_kill(const char *path)
{
    if (write_file(path, "cgroup.kill", "1") == 0)
        return 0;
    char file[1100];
    fmt(file, sizeof(file), "%s/cgroup.procs", path);
    FILE *f = fopen(file, "r");
    if (!f)
        return -errno;
    long pid;
    while (fscanf(f, "%ld", &pid) == 1)
        kill((pid_t)pid, SIGKILL);
    fclose(f);
    return 0;
}

int corral_cgroup_count(const char *path)
{
    char file[1100];
    fmt(file, sizeof(file), "%s/cgroup.procs", path);
    FILE *f = fopen(file, "r");
    if (!f)
        return -errno;
    long pid;
    int n = 0;
    while (fscanf(f, "%ld", &pid) == 1)
        n++;
    fclose(f);
    return n;
}

long corral_cgroup_oom_kills(const char *path)
{
    char buf[1024];
    if (read_file(path, "memory.events", buf, sizeof(buf)) < 0)
        return 0;
    const char *p = strstr(buf, "oom_kill ");
    return p ? atol(p + 9) : 0;
}

int corral_cgroup_remove(const char *path)
{
    int rc = 0;
    for (int i = 0; i < 50; i++) {
        if (rmdir(path) == 0 || errno == ENOENT)
            break;
        rc = -errno;
        if (errno != EBUSY)
            return rc;
        usleep(2000); /* processes just killed are still leaving */
    }
    char pod[1024];
    fmt(pod, sizeof(pod), "%s", path);
    char *slash = strrchr(pod, '/');
    if (slash) {
        *slash = '\0';
        rmdir(pod); /* only succeeds once the pod's last container cgroup is gone */
    }
    return 0;
}
