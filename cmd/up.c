/* SPDX-License-Identifier: Apache-2.0 */
/*
 * up: `corral up`, an all-in-one cluster on one machine, for trying corral and for demos.
 *
 *   1. `corral init` into DIR (once; later runs reuse the CA and credentials);
 *   2. the apiserver over HTTPS on the embedded store (DIR/data), with an audit log;
 *   3. the scheduler with the default profile;
 *   4. one node agent per entry of manifests/nodes/nodes.yaml, each on its own loopback
 *      address with a real hwloc topology (4×H100, 4×H200, 8×T4, an RTX desktop, ...), joining
 *      with a bootstrap token as a provider's machine would;
 *   5. the example manifests (every .yaml file in manifests/examples), applied with server-side apply so a
 *      second `up` changes nothing;
 *   6. the placement: which pod runs on which node and GPUs, and why a pod waits.
 * Then it keeps the cluster running until Ctrl-C, stopping every daemon it started. Every
 * daemon is a separate `corral` process (what production runs); their logs go to DIR/logs.
 */
#include "up.h"
#include "client.h"
#include "corral-config.h"
#include "error.h"
#include "kubeconfig.h"
#include "log.h"
#include "meta.h"
#include "yamljson.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_DAEMONS 32

struct daemon {
    char name[64];
    pid_t pid;
};

struct up {
    char dir[PATH_MAX];
    char manifests[PATH_MAX];
    char nodes_file[PATH_MAX];
    char exe[PATH_MAX];
    int port;
    char url[256];
    struct daemon daemons[MAX_DAEMONS];
    int n_daemons;
    struct corral_client *client;
    int wait_s;
    bool keep_running;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: corral up [--dir DIR] [--port N] [--manifests DIR] [--nodes FILE]\n"
            "                 [--wait SECONDS] [--exit]\n\n"
            "Starts an all-in-one corral cluster: apiserver (HTTPS, embedded store), scheduler\n"
            "and one node agent per simulated GPU machine, applies the example manifests and\n"
            "shows where each pod was placed.\n\n"
            "  --dir DIR         cluster state: credentials, store, logs (default ./corral-up)\n"
            "  --port N          apiserver port on 127.0.0.1 (default 6443; 0 picks a free one)\n"
            "  --manifests DIR   YAML to apply (default: the shipped manifests/examples)\n"
            "  --nodes FILE      simulated nodes (default: manifests/nodes/nodes.yaml)\n"
            "  --wait SECONDS    how long to wait for pods to be placed (default 30)\n"
            "  --exit            stop the cluster after showing the placement\n");
}

/* ---- processes ---- */

static pid_t spawn(struct up *u, const char *name, const char *const *args, int *out_fd)
{
    char log[PATH_MAX + 128];
    snprintf(log, sizeof(log), "%s/logs/%s.log", u->dir, name);
    int pipefd[2] = {-1, -1};
    if (out_fd && pipe(pipefd) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        if (out_fd)
            dup2(pipefd[1], STDOUT_FILENO);
        const char *argv[64] = {u->exe};
        for (int i = 0; args[i] && i < 62; i++)
            argv[i + 1] = args[i];
        execv(u->exe, (char *const *)argv);
        _exit(127);
    }
    if (out_fd) {
        close(pipefd[1]);
        *out_fd = pipefd[0];
    }
    if (u->n_daemons < MAX_DAEMONS) {
        struct daemon *d = &u->daemons[u->n_daemons++];
        snprintf(d->name, sizeof(d->name), "%s", name);
        d->pid = pid;
    }
    return pid;
}

static int run_to_end(struct up *u, const char *name, const char *const *args)
{
    pid_t pid = spawn(u, name, args, NULL);
    if (pid < 0)
        return -errno;
    int status = 0;
    waitpid(pid, &status, 0);
    u->n_daemons--; /* it has exited: nothing to stop later */
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}

/* Reads the daemon's "listening on URL" line. */
static int wait_listening(int fd, char *url, size_t len, int timeout_ms)
{
    char buf[1024];
    size_t n = 0;
    for (int waited = 0; waited < timeout_ms && !stop_requested; waited += 100) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r <= 0)
            return -EIO;
        n += (size_t)r;
        buf[n] = 0;
        char *line = strstr(buf, "listening on ");
        char *nl = line ? strchr(line, '\n') : NULL;
        if (nl) {
            *nl = 0;
            snprintf(url, len, "%s", line + strlen("listening on "));
            return 0;
        }
    }
    return -ETIMEDOUT;
}

static void stop_all(struct up *u)
{
    for (int i = u->n_daemons - 1; i >= 0; i--)
        kill(u->daemons[i].pid, SIGTERM);
    for (int i = u->n_daemons - 1; i >= 0; i--) {
        int status;
        for (int t = 0; t < 100; t++) {
            if (waitpid(u->daemons[i].pid, &status, WNOHANG) != 0)
                break;
            usleep(100000);
            if (t == 99) {
                kill(u->daemons[i].pid, SIGKILL);
                waitpid(u->daemons[i].pid, &status, 0);
            }
        }
    }
    u->n_daemons = 0;
}

/* ---- steps ---- */

static int ensure_dirs(struct up *u)
{
    char path[PATH_MAX + 16];
    if (mkdir(u->dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    snprintf(path, sizeof(path), "%s/logs", u->dir);
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -errno;
    snprintf(path, sizeof(path), "%s/nodes", u->dir);
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int init_cluster(struct up *u)
{
    char ca[PATH_MAX + 16], port[16];
    snprintf(ca, sizeof(ca), "%s/pki/ca.crt", u->dir);
    if (access(ca, F_OK) == 0)
        return 0;
    snprintf(port, sizeof(port), "%d", u->port ? u->port : 6443);
    const char *args[] = {"init", "--dir", u->dir, "--address", "127.0.0.1", "--port", port,
                          "--bootstrap-tokens", "1", "--token-ttl", "8760h", NULL};
    printf("corral up: creating the cluster CA and credentials in %s\n", u->dir);
    int rc = run_to_end(u, "init", args);
    if (rc < 0)
        fprintf(stderr, "corral up: `corral init` failed; see %s/logs/init.log\n", u->dir);
    return rc;
}

/*
 * Points every server: line of the kubeconfig at url (the port may have been picked at start,
 * or differ from an earlier run's). Rewrites the file in place, keeping its mode.
 */
static int point_kubeconfig(const char *path, const char *url)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    char line[8192];
    while (fgets(line, sizeof(line), f)) {
        const char *s = strstr(line, "server: ");
        if (s)
            fprintf(mem, "%.*sserver: %s\n", (int)(s - line), line, url);
        else
            fputs(line, mem);
    }
    fclose(f);
    fclose(mem);
    int fd = open(path, O_WRONLY | O_TRUNC);
    int rc = fd < 0 || write(fd, out, len) != (ssize_t)len ? -EIO : 0;
    if (fd >= 0)
        close(fd);
    free(out);
    return rc;
}

static int start_apiserver(struct up *u)
{
    char listen[64], data[PATH_MAX + 8], audit[PATH_MAX + 16];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", u->port);
    snprintf(data, sizeof(data), "%s/data", u->dir);
    /* corral init named these addresses in the serving certificate: keep to 127.0.0.1 */
    snprintf(audit, sizeof(audit), "%s/audit.log", u->dir);
    const char *args[] = {"apiserver", "--listen", listen, "--data-dir", data, "--cluster-dir",
                          u->dir, "--audit-log-path", audit, NULL};
    int fd = -1;
    if (spawn(u, "apiserver", args, &fd) < 0)
        return -errno;
    int rc = wait_listening(fd, u->url, sizeof(u->url), 30000);
    close(fd);
    if (rc < 0) {
        fprintf(stderr, "corral up: the apiserver did not start; see %s/logs/apiserver.log\n",
                u->dir);
        return rc;
    }
    printf("corral up: apiserver   %s\n", u->url);
    char kc[PATH_MAX + 32];
    snprintf(kc, sizeof(kc), "%s/admin.kubeconfig", u->dir);
    rc = point_kubeconfig(kc, u->url);
    if (rc < 0)
        return rc;
    return corral_kubeconfig_client_from_file(kc, NULL, &u->client);
}

static int start_scheduler(struct up *u)
{
    char kc[PATH_MAX + 32];
    snprintf(kc, sizeof(kc), "%s/admin.kubeconfig", u->dir);
    const char *args[] = {"scheduler", "--apiserver", u->url, "--kubeconfig", kc, NULL};
    if (spawn(u, "scheduler", args, NULL) < 0)
        return -errno;
    printf("corral up: scheduler   default profile\n");
    return 0;
}

/* Writes DIR/bootstrap.kubeconfig: the cluster CA and the first bootstrap token. */
static int write_bootstrap_kubeconfig(struct up *u, char *path, size_t len)
{
    char tokens[PATH_MAX + 32], ca[PATH_MAX + 16], line[256], token[128] = "";
    snprintf(tokens, sizeof(tokens), "%s/bootstrap-tokens", u->dir);
    snprintf(ca, sizeof(ca), "%s/pki/ca.crt", u->dir);
    snprintf(path, len, "%s/bootstrap.kubeconfig", u->dir);
    FILE *f = fopen(tokens, "r");
    while (f && fgets(line, sizeof(line), f) && !token[0])
        if (line[0] != '#')
            sscanf(line, "%127s", token);
    if (f)
        fclose(f);
    if (!token[0]) {
        fprintf(stderr, "corral up: no bootstrap token in %s\n", tokens);
        return -ENOENT;
    }
    struct corral_kubeconfig kc = {.context = "bootstrap@corral", .cluster = "corral",
                                   .user = "bootstrap", .server = u->url, .ca_file = ca,
                                   .token = token};
    const struct corral_kubeconfig *list[] = {&kc};
    return corral_kubeconfig_write(path, list, 1);
}

static const char *str_of(const json_t *obj, const char *key, const char *fallback)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : fallback;
}

static int start_nodes(struct up *u)
{
    char bootstrap[PATH_MAX + 32];
    int rc = write_bootstrap_kubeconfig(u, bootstrap, sizeof(bootstrap));
    if (rc < 0)
        return rc;
    json_t *docs = NULL;
    struct corral_parse_error err;
    rc = corral_yaml_load_file(u->nodes_file, &docs, &err);
    if (rc < 0) {
        fprintf(stderr, "corral up: %s:%d:%d: %s\n", u->nodes_file, err.line, err.column,
                rc == CORRAL_EPARSE ? err.message : corral_strerror(rc));
        return rc;
    }
    json_t *nodes = json_array_get(docs, 0);
    char topo_dir[PATH_MAX];
    snprintf(topo_dir, sizeof(topo_dir), "%s", u->nodes_file);
    char *slash = strrchr(topo_dir, '/');
    if (slash)
        *slash = 0;
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *name = str_of(n, "name", NULL), *topo = str_of(n, "topology", NULL);
        if (!name || !topo) {
            fprintf(stderr, "corral up: %s: node %zu needs name and topology\n", u->nodes_file,
                    i + 1);
            json_decref(docs);
            return -EINVAL;
        }
        char state[PATH_MAX + 80], topology[PATH_MAX + 80], addr[32];
        snprintf(state, sizeof(state), "%s/nodes/%s", u->dir, name);
        snprintf(topology, sizeof(topology), "%s/%s", topo_dir, topo);
        snprintf(addr, sizeof(addr), "127.0.0.%zu", 10 + i);
        const char *args[] = {"kubelet", "--apiserver", u->url, "--kubeconfig", bootstrap,
                              "--name", name, "--state-dir", state, "--topology", topology,
                              "--address", addr, "--port", "0", "--provider",
                              str_of(n, "provider", name), "--zone", str_of(n, "zone", "local"),
                              "--region", str_of(n, "region", "local"), NULL};
        if (spawn(u, name, args, NULL) < 0) {
            json_decref(docs);
            return -errno;
        }
        printf("corral up: node agent  %-14s %s (%s)\n", name, addr, topo);
    }
    int count = (int)json_array_size(nodes);
    json_decref(docs);
    return count;
}

static bool node_ready(const json_t *node)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(node, "status"), "conditions"), i, c)
    {
        if (strcmp(str_of(c, "type", ""), "Ready") == 0)
            return strcmp(str_of(c, "status", ""), "True") == 0;
    }
    return false;
}

static int wait_nodes(struct up *u, int want)
{
    for (int t = 0; t < 600 && !stop_requested; t++) {
        json_t *list = NULL;
        int ready = 0;
        if (corral_client_get(u->client, "/api/v1/nodes", &list) == 0) {
            size_t i;
            json_t *n;
            json_array_foreach(json_object_get(list, "items"), i, n) ready += node_ready(n);
            json_decref(list);
        }
        if (ready >= want) {
            printf("corral up: %d nodes Ready\n", ready);
            return 0;
        }
        usleep(100000);
    }
    fprintf(stderr, "corral up: nodes did not become Ready; see %s/logs/\n", u->dir);
    return -ETIMEDOUT;
}

/* Finds the plural and scope of kind in apiVersion from the server's discovery documents. */
static int resource_for(struct up *u, const char *av, const char *kind, char *plural, size_t len,
                        bool *namespaced)
{
    char path[300];
    snprintf(path, sizeof(path), "%s%s", strchr(av, '/') ? "/apis/" : "/api/", av);
    json_t *list = NULL;
    int rc = corral_client_get(u->client, path, &list);
    if (rc < 0)
        return rc;
    rc = CORRAL_ENOTFOUND;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(list, "resources"), i, r)
    {
        const char *name = str_of(r, "name", "");
        if (rc < 0 && strcmp(str_of(r, "kind", ""), kind) == 0 && !strchr(name, '/')) {
            snprintf(plural, len, "%s", name);
            *namespaced = json_is_true(json_object_get(r, "namespaced"));
            rc = 0;
        }
    }
    json_decref(list);
    return rc;
}

/* Server-side apply of one object (idempotent across runs). */
static int apply_object(struct up *u, const json_t *obj, const char *file)
{
    const char *av = str_of(obj, "apiVersion", NULL), *kind = str_of(obj, "kind", NULL);
    const char *name = corral_meta_name(obj), *ns = corral_meta_namespace(obj);
    if (!av || !kind || !name) {
        fprintf(stderr, "corral up: %s: an object lacks apiVersion, kind or metadata.name\n",
                file);
        return -EINVAL;
    }
    char plural[128];
    bool namespaced;
    int rc = resource_for(u, av, kind, plural, sizeof(plural), &namespaced);
    if (rc < 0) {
        fprintf(stderr, "corral up: %s: the server has no kind %s in %s\n", file, kind, av);
        return rc;
    }
    char *path = corral_client_path(av, plural, namespaced ? (ns ? ns : "default") : NULL, name,
                                    NULL);
    if (!path || corral_client_query_add(&path, "fieldManager", "corral-up") < 0 ||
        corral_client_query_add(&path, "force", "true") < 0) {
        free(path);
        return -ENOMEM;
    }
    char *body = json_dumps(obj, JSON_COMPACT);
    struct corral_response r;
    rc = corral_client_request(u->client, "PATCH", path, "application/apply-patch+yaml", body,
                               strlen(body), &r);
    if (rc == 0 && r.status >= 300) {
        fprintf(stderr, "corral up: %s: %s %s: %s\n", file, kind, name,
                str_of(r.json, "message", r.body));
        rc = corral_client_reply_error(NULL, &r);
    } else if (rc == 0) {
        printf("  %s/%s %s\n", plural, name, r.status == 201 ? "created" : "applied");
    }
    corral_response_clear(&r);
    free(body);
    free(path);
    return rc;
}

static int compare_names(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int apply_manifests(struct up *u)
{
    struct dirent **entries;
    int n = scandir(u->manifests, &entries, NULL, compare_names);
    if (n < 0) {
        fprintf(stderr, "corral up: cannot read %s: %s\n", u->manifests, strerror(errno));
        return -errno;
    }
    printf("corral up: applying %s\n", u->manifests);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *f = entries[i]->d_name;
        size_t len = strlen(f);
        if (rc == 0 && len > 5 && strcmp(f + len - 5, ".yaml") == 0) {
            char path[PATH_MAX + 300];
            snprintf(path, sizeof(path), "%s/%s", u->manifests, f);
            json_t *docs = NULL;
            struct corral_parse_error err;
            rc = corral_yaml_load_file(path, &docs, &err);
            if (rc < 0)
                fprintf(stderr, "corral up: %s:%d:%d: %s\n", path, err.line, err.column,
                        err.message);
            size_t k;
            json_t *obj;
            json_array_foreach(docs, k, obj) if (rc == 0) rc = apply_object(u, obj, path);
            json_decref(docs);
        }
        free(entries[i]);
    }
    free(entries);
    return rc;
}

/* ---- placement ---- */

static const char *gpu_models(const json_t *node, const char *assigned, char *buf, size_t len)
{
    const char *gpus = json_string_value(json_object_get(corral_meta_annotations(node),
                                                         "corral.io/gpus"));
    json_t *list = gpus ? json_loads(gpus, 0, NULL) : NULL;
    buf[0] = 0;
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", assigned);
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
        json_t *g = json_array_get(list, (size_t)atoi(tok));
        size_t n = strlen(buf);
        snprintf(buf + n, len - n, "%s%s:%s", n ? " " : "", tok,
                 str_of(g, "model", "?"));
    }
    json_decref(list);
    return buf;
}

static const char *pending_reason(const json_t *pod)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(pod, "status"), "conditions"), i, c)
    {
        if (strcmp(str_of(c, "type", ""), "PodScheduled") == 0 &&
            strcmp(str_of(c, "status", ""), "False") == 0)
            return str_of(c, "message", "unschedulable");
    }
    return "waiting for the scheduler";
}

static int count_unplaced(const json_t *pods)
{
    int n = 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(pods, "items"), i, p)
    {
        const char *phase = str_of(json_object_get(p, "status"), "phase", "Pending");
        n += !json_string_length(json_object_get(json_object_get(p, "spec"), "nodeName")) ||
             strcmp(phase, "Pending") == 0;
    }
    return n;
}

static void print_placement(struct up *u, const json_t *pods)
{
    json_t *nodes = NULL;
    corral_client_get(u->client, "/api/v1/nodes", &nodes);
    printf("\n%-10s %-34s %-10s %-14s %s\n", "NAMESPACE", "POD", "PHASE", "NODE", "GPUS");
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(pods, "items"), i, p)
    {
        const char *node = str_of(json_object_get(p, "spec"), "nodeName", "");
        const char *phase = str_of(json_object_get(p, "status"), "phase", "Pending");
        json_t *ann = corral_meta_annotations(p);
        const char *assigned = str_of(ann, "corral.io/assigned-gpus", "");
        const char *milli = str_of(ann, "corral.io/assigned-gpu-milli", NULL);
        char gpus[512] = "-";
        size_t k;
        json_t *n;
        json_array_foreach(json_object_get(nodes, "items"), k, n)
        {
            if (*assigned && strcmp(corral_meta_name(n), node) == 0)
                gpu_models(n, assigned, gpus, sizeof(gpus));
        }
        if (milli) {
            size_t len = strlen(gpus);
            snprintf(gpus + len, sizeof(gpus) - len, " (%s/1000 shared)", milli);
        }
        printf("%-10s %-34s %-10s %-14s %s\n", corral_meta_namespace(p), corral_meta_name(p),
               phase, *node ? node : "<none>", *node ? gpus : pending_reason(p));
    }
    json_decref(nodes);
}

static int show_placement(struct up *u)
{
    json_t *pods = NULL;
    for (int t = 0; t < u->wait_s * 10 && !stop_requested; t++) {
        json_decref(pods);
        pods = NULL;
        if (corral_client_get(u->client, "/api/v1/pods", &pods) == 0 &&
            json_array_size(json_object_get(pods, "items")) > 0 && count_unplaced(pods) == 0)
            break;
        usleep(100000);
    }
    if (!pods)
        return -EIO;
    print_placement(u, pods);
    json_decref(pods);
    return 0;
}

/* ---- main ---- */

static void resolve_defaults(struct up *u)
{
    ssize_t n = readlink("/proc/self/exe", u->exe, sizeof(u->exe) - 1);
    u->exe[n > 0 ? n : 0] = 0;
    if (!u->manifests[0])
        snprintf(u->manifests, sizeof(u->manifests), "%s/manifests/examples", CORRAL_SOURCE_DIR);
    if (!u->nodes_file[0])
        snprintf(u->nodes_file, sizeof(u->nodes_file), "%s/manifests/nodes/nodes.yaml",
                 CORRAL_SOURCE_DIR);
    char abs[PATH_MAX];
    if (realpath(u->dir, abs))
        snprintf(u->dir, sizeof(u->dir), "%s", abs);
}

static int parse_args(int argc, char **argv, struct up *u)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},   {"port", required_argument, NULL, 'p'},
        {"manifests", required_argument, NULL, 'm'}, {"nodes", required_argument, NULL, 'n'},
        {"wait", required_argument, NULL, 'w'},  {"exit", no_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': snprintf(u->dir, sizeof(u->dir), "%s", optarg); break;
        case 'p': u->port = atoi(optarg); break;
        case 'm': snprintf(u->manifests, sizeof(u->manifests), "%s", optarg); break;
        case 'n': snprintf(u->nodes_file, sizeof(u->nodes_file), "%s", optarg); break;
        case 'w': u->wait_s = atoi(optarg); break;
        case 'x': u->keep_running = false; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -EINVAL;
        }
    }
    if (u->port < 0 || u->port > 65535 || u->wait_s < 0) {
        fprintf(stderr, "corral up: --port must be 0-65535 (0 picks a free one) and --wait "
                "non-negative\n");
        return -EINVAL;
    }
    return 0;
}

static int bring_up(struct up *u)
{
    int rc = ensure_dirs(u);
    if (rc == 0)
        rc = init_cluster(u);
    if (rc == 0)
        rc = start_apiserver(u);
    if (rc == 0)
        rc = start_scheduler(u);
    int nodes = rc == 0 ? start_nodes(u) : rc;
    if (nodes < 0)
        return nodes;
    rc = wait_nodes(u, nodes);
    if (rc == 0)
        rc = apply_manifests(u);
    if (rc == 0)
        rc = show_placement(u);
    return rc;
}

int corral_up_main(int argc, char **argv)
{
    struct up u = {.port = 6443, .wait_s = 30, .keep_running = true};
    snprintf(u.dir, sizeof(u.dir), "corral-up");
    if (parse_args(argc, argv, &u) < 0)
        return 2;
    resolve_defaults(&u);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    int rc = bring_up(&u);
    if (rc == 0 && u.keep_running) {
        printf("\nThe cluster is running. In another terminal:\n"
               "  export KUBECONFIG=%s/admin.kubeconfig\n"
               "  kubectl get nodes\n"
               "  kubectl get pods -A -o wide\n"
               "Logs are in %s/logs. Press Ctrl-C to stop the cluster.\n",
               u.dir, u.dir);
        fflush(stdout);
        while (!stop_requested)
            pause();
    }
    if (rc < 0 && !stop_requested)
        fprintf(stderr, "corral up: %s (logs in %s/logs)\n", corral_strerror(rc), u.dir);
    printf("corral up: stopping\n");
    corral_client_free(u.client);
    stop_all(&u);
    return rc < 0 ? 1 : 0;
}
