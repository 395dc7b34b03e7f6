/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the pieces under the pod runtime: the container exec plan (argv, env,
 * references, $(VAR) expansion), CRI log files (format, rotation, tail/since/limit, follow),
 * GPU admission, process spawning and cgroup helpers. Real files and real processes.
 */
#include "cgroup.h"
#include "container.h"
#include "corral-config.h"
#include "gpualloc.h"
#include "harness.h"
#include "logs.h"
#include "proc.h"
#include "topology.h"
#include "yamljson.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOPO(file) CORRAL_SHARED_DIR "/hwloc-topologies/" file

/* Parses one YAML document (flow style welcome: "---" keeps it from being read as JSON). */
static json_t *yaml(const char *text)
{
    json_t *docs = NULL;
    struct corral_parse_error pe;
    char *src = malloc(strlen(text) + 5);
    CHECK(src != NULL);
    sprintf(src, "---\n%s", text);
    int rc = corral_yaml_load(src, strlen(src), &docs, &pe);
    free(src);
    if (rc != 0)
        fprintf(stderr, "yaml %d:%d %s\n", pe.line, pe.column, pe.message);
    CHECK_INT_EQ(rc, 0);
    json_t *doc = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return doc;
}

static char *make_tmpdir(void)
{
    char *d = strdup("/tmp/corral-kparts-XXXXXX");
    CHECK(mkdtemp(d) != NULL);
    return d;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* ---- container plans ------------------------------------------------------------------------ */

static const char pod_yaml[] =
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata: {name: web, namespace: team-a, uid: u-1,\n"
    "           labels: {app: web}, annotations: {note: hi}}\n"
    "spec:\n"
    "  serviceAccountName: sa\n"
    "  containers:\n"
    "  - name: app\n"
    "    image: busybox\n"
    "    command: [sh, -c]\n"
    "    args: ['echo $(GREETING) $$(HOME) $(MISSING)']\n"
    "    workingDir: /srv\n"
    "    envFrom:\n"
    "    - configMapRef: {name: cfg}\n"
    "    - secretRef: {name: sec}\n"
    "      prefix: S_\n"
    "    env:\n"
    "    - {name: GREETING, value: hello}\n"
    "    - {name: BOTH, value: $(GREETING)-$(MODE)}\n"
    "    - name: POD\n"
    "      valueFrom: {fieldRef: {fieldPath: metadata.name}}\n"
    "    - name: NS\n"
    "      valueFrom: {fieldRef: {fieldPath: metadata.namespace}}\n"
    "    - name: APP\n"
    "      valueFrom: {fieldRef: {fieldPath: \"metadata.labels['app']\"}}\n"
    "    - name: NODE\n"
    "      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}\n"
    "    - name: IP\n"
    "      valueFrom: {fieldRef: {fieldPath: status.podIP}}\n"
    "    - name: CPU\n"
    "      valueFrom: {resourceFieldRef: {resource: limits.cpu,\n"
    "                                     divisor: 1m}}\n"
    "    - name: MEM_MI\n"
    "      valueFrom: {resourceFieldRef: {resource: limits.memory,\n"
    "                                     divisor: 1Mi}}\n"
    "    - name: KEY\n"
    "      valueFrom: {configMapKeyRef: {name: cfg, key: MODE}}\n"
    "    - name: PASS\n"
    "      valueFrom: {secretKeyRef: {name: sec, key: password}}\n"
    "    - name: OPT\n"
    "      valueFrom: {secretKeyRef: {name: nope, key: x,\n"
    "                                 optional: true}}\n"
    "    - {name: CUDA_VISIBLE_DEVICES, value: '0,1,2,3'}\n"
    "    resources:\n"
    "      limits: {cpu: 500m, memory: 256Mi}\n";

static const char sources_json[] =
    "{\"configmaps\": {\"cfg\": {\"data\": {\"MODE\": \"fast\", \"bad key\": \"x\"}}},"
    " \"secrets\": {\"sec\": {\"data\": {\"password\": \"czNjcjN0\"}}}}";

static void test_plan_env_and_argv(void)
{
    json_t *pod = yaml(pod_yaml), *sources = json_loads(sources_json, 0, NULL);
    json_t *c = json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0);
    struct corral_plan_context ctx = {.node_name = "gpu-1",
                                      .host_ip = "127.0.0.7",
                                      .default_cwd = "/tmp",
                                      .gpu_visible = "GPU-a",
                                      .node_cpu_milli = 4000,
                                      .node_memory_bytes = 1LL << 33,
                                      .sources = sources};
    struct corral_container_plan plan;
    char err[256] = "";
    int rc = corral_container_plan(pod, c, &ctx, &plan, err, sizeof(err));
    if (rc)
        fprintf(stderr, "%s\n", err);
    CHECK_INT_EQ(rc, 0);
    CHECK_STR_EQ(plan.argv[0], "sh");
    CHECK_STR_EQ(plan.argv[1], "-c");
    CHECK_STR_EQ(plan.argv[2], "echo hello $(HOME) $(MISSING)");
    CHECK(plan.argv[3] == NULL);
    CHECK_STR_EQ(plan.cwd, "/srv");
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "GREETING"), "hello");
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "MODE"), "fast"); /* envFrom */
    CHECK(corral_container_plan_getenv(&plan, "bad key") == NULL);
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "S_password"), "s3cr3t");
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "BOTH"), "hello-fast");
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "POD"), "web");
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "NS"), "team-a");
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "APP"), "web");
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "NODE"), "gpu-1");
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "IP"), "127.0.0.7");
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "CPU"), "500");
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "MEM_MI"), "256");
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "KEY"), "fast");
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "PASS"), "s3cr3t");
    CHECK(corral_container_plan_getenv(&plan, "OPT") == NULL);
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "HOSTNAME"), "web");
    CHECK(corral_container_plan_getenv(&plan, "PATH") != NULL);
    /* the pod cannot widen its GPUs */
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "CUDA_VISIBLE_DEVICES"), "GPU-a");
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "NVIDIA_VISIBLE_DEVICES"), "GPU-a");
    CHECK_INT_EQ(plan.cpu_limit_milli, 500);
    CHECK_INT_EQ(plan.memory_limit_bytes, 256 << 20);
    CHECK_INT_EQ(plan.cpu_request_milli, 500); /* requests default to limits */
    corral_container_plan_free(&plan);

    /* no GPUs: nothing visible */
    ctx.gpu_visible = "";
    CHECK_INT_EQ(corral_container_plan(pod, c, &ctx, &plan, err, sizeof(err)), 0);
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "CUDA_VISIBLE_DEVICES"), "");
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "NVIDIA_VISIBLE_DEVICES"), "void");
    CHECK(corral_container_plan_getenv(&plan, "CUDA_DEVICE_ORDER") == NULL);
    corral_container_plan_free(&plan);
    /* indices (a node without UUIDs) are in PCI bus order, and CUDA must count the same way */
    ctx.gpu_visible = "2,3";
    CHECK_INT_EQ(corral_container_plan(pod, c, &ctx, &plan, err, sizeof(err)), 0);
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "CUDA_VISIBLE_DEVICES"), "2,3");
    CHECK_STR_EQ(corral_container_plan_getenv(&plan, "CUDA_DEVICE_ORDER"), "PCI_BUS_ID");
    corral_container_plan_free(&plan);
    json_decref(sources);
    json_decref(pod);
}

static void test_plan_errors(void)
{
    json_t *pod = yaml(pod_yaml);
    json_t *c = json_array_get(json_object_get(json_object_get(pod, "spec"), "containers"), 0);
    struct corral_plan_context ctx = {.node_name = "n", .host_ip = "127.0.0.1"};
    struct corral_container_plan plan;
    char err[256] = "";
    CHECK_INT_EQ(corral_container_plan(pod, c, &ctx, &plan, err, sizeof(err)), -EINVAL);
    CHECK_STR_EQ(err, "configmap \"cfg\" not found");
    json_t *sources = json_loads(sources_json, 0, NULL);
    ctx.sources = sources;
    json_object_del(
        json_object_get(json_object_get(json_object_get(sources, "configmaps"), "cfg"), "data"),
        "MODE");
    CHECK_INT_EQ(corral_container_plan(pod, c, &ctx, &plan, err, sizeof(err)), -EINVAL);
    CHECK_STR_EQ(err, "couldn't find key MODE in ConfigMap team-a/cfg");
    json_t *bare = yaml("{name: x, image: busybox}");
    CHECK_INT_EQ(corral_container_plan(pod, bare, &ctx, &plan, err, sizeof(err)), -EINVAL);
    CHECK_STR_CONTAINS(err, "has no command");
    json_t *onlyargs = yaml("{name: x, args: [/bin/true, a]}");
    CHECK_INT_EQ(corral_container_plan(pod, onlyargs, &ctx, &plan, err, sizeof(err)), 0);
    CHECK_STR_EQ(plan.argv[0], "/bin/true");
    CHECK_STR_EQ(plan.cwd, "/");
    corral_container_plan_free(&plan);
    json_t *badenv = yaml("{name: x, command: [a], env: [{name: '1X', value: v}]}");
    CHECK_INT_EQ(corral_container_plan(pod, badenv, &ctx, &plan, err, sizeof(err)), -EINVAL);
    CHECK_STR_CONTAINS(err, "invalid variable name");
    json_t *badfield = yaml("{name: x, command: [a], env: [{name: X, valueFrom: {fieldRef: "
                            "{fieldPath: spec.bogus}}}]}");
    CHECK_INT_EQ(corral_container_plan(pod, badfield, &ctx, &plan, err, sizeof(err)), -EINVAL);
    CHECK_STR_CONTAINS(err, "spec.bogus");
    json_decref(badfield);
    json_decref(badenv);
    json_decref(onlyargs);
    json_decref(bare);
    json_decref(sources);
    json_decref(pod);
}

static void test_expand(void)
{
    char *env[] = {"A=1", "BB=two", NULL};
    static const char *const cases[][2] = {
        {"$(A)", "1"},    {"x$(BB)y", "xtwoy"},    {"$$(A)", "$(A)"},
        {"$(C)", "$(C)"}, {"$(A", "$(A"},          {"$", "$"},
        {"$$", "$"},      {"a$(A)$(BB)", "a1two"}, {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = corral_container_expand(cases[i][0], env);
        CHECK_STR_EQ(out, cases[i][1]);
        free(out);
    }
}

/* ---- logs -------------------------------------------------------------------------------- */

struct sink {
    char buf[65536];
    size_t len;
};

static int to_sink(void *ctx, const char *data, size_t len)
{
    struct sink *s = ctx;
    CHECK(s->len + len < sizeof(s->buf));
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return 0;
}

static const char *read_log(const char *path, int max_files, struct corral_log_query q,
                            struct sink *s)
{
    s->len = 0;
    s->buf[0] = '\0';
    CHECK(corral_log_read(path, max_files, &q, to_sink, s, NULL) >= 0);
    return s->buf;
}

static void test_log_format_and_query(void)
{
    char *dir = make_tmpdir();
    char path[256];
    snprintf(path, sizeof(path), "%s/0.log", dir);
    struct corral_log_writer w;
    CHECK_INT_EQ(corral_log_open(&w, path, 1 << 20, 3), 0);
    CHECK_INT_EQ(corral_log_write(&w, CORRAL_LOG_STDOUT, "one\ntwo\nthr", 11), 0);
    CHECK_INT_EQ(corral_log_write(&w, CORRAL_LOG_STDERR, "oops\n", 5), 0);
    CHECK_INT_EQ(corral_log_write(&w, CORRAL_LOG_STDOUT, "ee\n", 3), 0);
    corral_log_close(&w);

    /* the CRI format on disk */
    FILE *f = fopen(path, "r");
    char line[256];
    CHECK(fgets(line, sizeof(line), f));
    CHECK(strlen(line) > 31 && line[4] == '-' && line[10] == 'T' && line[29] == 'Z');
    CHECK_STR_EQ(line + 31, "stdout F one\n");
    CHECK(fgets(line, sizeof(line), f));
    CHECK(fgets(line, sizeof(line), f));
    CHECK_STR_EQ(line + 31, "stdout P thr\n");
    CHECK(fgets(line, sizeof(line), f));
    CHECK_STR_EQ(line + 31, "stderr F oops\n");
    fclose(f);

    struct sink s;
    struct corral_log_query all = {.tail_lines = -1, .limit_bytes = -1};
    CHECK_STR_EQ(read_log(path, 3, all, &s), "one\ntwo\nthroops\nee\n");
    struct corral_log_query tail = {.tail_lines = 2, .limit_bytes = -1};
    CHECK_STR_EQ(read_log(path, 3, tail, &s), "oops\nee\n");
    tail.tail_lines = 0;
    CHECK_STR_EQ(read_log(path, 3, tail, &s), "");
    struct corral_log_query limit = {.tail_lines = -1, .limit_bytes = 6};
    CHECK_STR_EQ(read_log(path, 3, limit, &s), "one\ntw");
    struct corral_log_query since = {
        .tail_lines = -1, .limit_bytes = -1, .since_ns = (int64_t)(time(NULL) + 3600) * 1000000000};
    CHECK_STR_EQ(read_log(path, 3, since, &s), "");
    struct corral_log_query stamps = {.timestamps = true, .tail_lines = 1, .limit_bytes = -1};
    read_log(path, 3, stamps, &s);
    CHECK(s.len == 31 + 3 && s.buf[30] == ' ' && strcmp(s.buf + 31, "ee\n") == 0);

    char missing[300];
    snprintf(missing, sizeof(missing), "%s/9.log", dir);
    CHECK_INT_EQ(corral_log_read(missing, 3, &all, to_sink, &s, NULL), -ENOENT);
    rm_tree(dir);
}

static void test_log_rotation_and_follow(void)
{
    char *dir = make_tmpdir();
    char path[256], name[300];
    snprintf(path, sizeof(path), "%s/0.log", dir);
    struct corral_log_writer w;
    CHECK_INT_EQ(corral_log_open(&w, path, 4096, 3), 0);
    char line[100];
    for (int i = 0; i < 200; i++) { /* ~9 KiB of entries: two rotations */
        int n = snprintf(line, sizeof(line), "line %03d\n", i);
        CHECK_INT_EQ(corral_log_write(&w, CORRAL_LOG_STDOUT, line, (size_t)n), 0);
    }
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size <= 4096);
    snprintf(name, sizeof(name), "%s.1", path);
    CHECK(stat(name, &st) == 0 && st.st_size <= 4096);
    snprintf(name, sizeof(name), "%s.2", path);
    CHECK(stat(name, &st) == 0);
    snprintf(name, sizeof(name), "%s.3", path);
    CHECK(stat(name, &st) < 0); /* three files in all */

    static struct sink s;
    struct corral_log_query all = {.tail_lines = -1, .limit_bytes = -1};
    struct corral_log_cursor cur;
    s.len = 0;
    CHECK_INT_EQ(corral_log_read(path, 3, &all, to_sink, &s, &cur), 0);
    CHECK_STR_CONTAINS(s.buf, "line 199\n");
    /* what survives is contiguous and ends with the newest line */
    int first = atoi(strstr(s.buf, "line ") + 5);
    char expect[16];
    snprintf(expect, sizeof(expect), "line %03d\n", first + 1);
    CHECK_STR_CONTAINS(s.buf, expect);
    struct corral_log_query tail = {.tail_lines = 3, .limit_bytes = -1};
    CHECK_STR_EQ(read_log(path, 3, tail, &s), "line 197\nline 198\nline 199\n");

    /* follow: new lines, across a rotation */
    s.len = 0;
    s.buf[0] = '\0';
    CHECK_INT_EQ(corral_log_follow(path, &all, to_sink, &s, &cur), 0);
    CHECK_STR_EQ(s.buf, "");
    for (int i = 200; i < 260; i++) {
        int n = snprintf(line, sizeof(line), "line %03d\n", i);
        CHECK_INT_EQ(corral_log_write(&w, CORRAL_LOG_STDOUT, line, (size_t)n), 0);
    }
    CHECK_INT_EQ(corral_log_follow(path, &all, to_sink, &s, &cur), 0);
    CHECK(strncmp(s.buf, "line 200\n", 9) == 0);
    CHECK(s.len >= 9 * 60);
    CHECK_STR_CONTAINS(s.buf, "line 259\n");
    corral_log_close(&w);
    rm_tree(dir);
}

/* ---- GPU admission ------------------------------------------------------------------------- */

static json_t *gpu_pod(const char *uid, const char *limits, const char *annotations)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "{metadata: {name: p-%s, uid: %s, annotations: {%s}},"
             " spec: {containers: [{name: c, command: [x], resources: {limits: {%s}}}]}}",
             uid, uid, annotations, limits);
    return yaml(text);
}

static void test_gpu_admission(void)
{
    struct corral_topology *t = NULL;
    char err[256];
    CHECK_INT_EQ(
        corral_topology_load(TOPO("lenovo-sd665n-v3_2xEPYC9555_4xH200_nvlink_cuda-nvml-opencl.xml"),
                             &t, err, sizeof(err)),
        0);
    struct corral_gpu_pool pool;
    corral_gpu_pool_init(&pool, t);
    struct corral_gpu_assignment a, b, c, d;
    char vis[512];

    json_t *p1 = gpu_pod("a", "nvidia.com/gpu: 2", "");
    CHECK_INT_EQ(corral_gpu_admit(&pool, "a", p1, &a, err, sizeof(err)), 0);
    CHECK_INT_EQ(a.n, 2);
    CHECK_INT_EQ(a.idx[0], 0);
    CHECK_INT_EQ(a.idx[1], 1);
    corral_gpu_visible(t, a.idx, a.n, vis, sizeof(vis));
    CHECK_STR_EQ(vis, "GPU-46f77619-68bf-8f9d-7cfb-61fa9c4ca692,"
                      "GPU-32559d2f-bd80-6360-09ab-97af8614d541");

    /* a binding that names a held GPU is refused */
    json_t *p2 = gpu_pod("b", "nvidia.com/gpu: 1", "corral.io/assigned-gpus: '1'");
    CHECK_INT_EQ(corral_gpu_admit(&pool, "b", p2, &b, err, sizeof(err)), -EBUSY);
    CHECK_STR_CONTAINS(err, "GPU 1 is already held by pod a");
    json_t *p3 = gpu_pod("c", "nvidia.com/gpu: 1",
                         "corral.io/assigned-gpu-uuids: GPU-81addb77-2337-6f9f-b0dd-696aa82969d1");
    CHECK_INT_EQ(corral_gpu_admit(&pool, "c", p3, &c, err, sizeof(err)), 0);
    CHECK_INT_EQ(c.n, 1);
    CHECK_INT_EQ(c.idx[0], 3);
    /* shared: two halves of the remaining GPU 2, a third share does not fit */
    json_t *p4 = gpu_pod("d", "corral.io/gpu-milli: 500", "");
    CHECK_INT_EQ(corral_gpu_admit(&pool, "d", p4, &d, err, sizeof(err)), 0);
    CHECK_INT_EQ(d.idx[0], 2);
    CHECK_INT_EQ(d.milli, 500);
    struct corral_gpu_assignment e, f;
    json_t *p5 = gpu_pod("e", "corral.io/gpu-milli: 500",
                         "corral.io/assigned-gpus: '2', corral.io/assigned-gpu-milli: '500'");
    CHECK_INT_EQ(corral_gpu_admit(&pool, "e", p5, &e, err, sizeof(err)), 0);
    json_t *p6 = gpu_pod("f", "corral.io/gpu-milli: 100", "");
    CHECK_INT_EQ(corral_gpu_admit(&pool, "f", p6, &f, err, sizeof(err)), -EBUSY);
    CHECK_STR_CONTAINS(err, "free");
    /* nothing whole is left either */
    CHECK_INT_EQ(corral_gpu_admit(&pool, "b", p2, &b, err, sizeof(err)), -EBUSY);
    corral_gpu_release(&pool, "a", &a);
    CHECK_INT_EQ(corral_gpu_admit(&pool, "b", p2, &b, err, sizeof(err)), 0);
    CHECK_INT_EQ(b.idx[0], 1);

    /* malformed requests and bindings */
    json_t *bad = gpu_pod("g", "nvidia.com/gpu: 1", "corral.io/assigned-gpus: '7'");
    CHECK_INT_EQ(corral_gpu_admit(&pool, "g", bad, &f, err, sizeof(err)), -ENOENT);
    CHECK_STR_CONTAINS(err, "does not exist");
    json_t *wrongn = gpu_pod("h", "nvidia.com/gpu: 2", "corral.io/assigned-gpus: '0'");
    CHECK_INT_EQ(corral_gpu_admit(&pool, "h", wrongn, &f, err, sizeof(err)), -EINVAL);
    json_t *frac = gpu_pod("i", "nvidia.com/gpu: 500m", "");
    CHECK_INT_EQ(corral_gpu_admit(&pool, "i", frac, &f, err, sizeof(err)), -EINVAL);
    json_t *none = gpu_pod("j", "cpu: 1", "");
    CHECK_INT_EQ(corral_gpu_admit(&pool, "j", none, &f, err, sizeof(err)), 0);
    CHECK_INT_EQ(f.n, 0);
    json_t *all[] = {p1, p2, p3, p4, p5, p6, bad, wrongn, frac, none};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        json_decref(all[i]);
    corral_topology_free(t);
}

static void test_gpu_island_preference(void)
{
    struct corral_topology *t = NULL;
    char err[256];
    CHECK_INT_EQ(corral_topology_load(TOPO("ibm-power8_2xP8_4xP100-SXM2_nvlink_cuda-nvml-opencl"
                                           ".xml"),
                                      &t, err, sizeof(err)),
                 0);
    struct corral_gpu_pool pool;
    corral_gpu_pool_init(&pool, t);
    struct corral_gpu_assignment a, b;
    json_t *one = gpu_pod("a", "nvidia.com/gpu: 1", "");
    json_t *two = gpu_pod("b", "nvidia.com/gpu: 2", "");
    CHECK_INT_EQ(corral_gpu_admit(&pool, "a", one, &a, err, sizeof(err)), 0);
    CHECK_INT_EQ(a.idx[0], 0);
    /* GPUs 1 and 2 are free but on different islands; 2 and 3 share one */
    CHECK_INT_EQ(corral_gpu_admit(&pool, "b", two, &b, err, sizeof(err)), 0);
    CHECK_INT_EQ(b.idx[0], 2);
    CHECK_INT_EQ(b.idx[1], 3);
    char vis[256];
    struct corral_topology *nouuid = NULL;
    CHECK_INT_EQ(corral_topology_load(TOPO("lenovo-sd665n-v3_2xEPYC9555_4xH200_pci-only.xml"),
                                      &nouuid, err, sizeof(err)),
                 0);
    corral_gpu_visible(nouuid, b.idx, b.n, vis, sizeof(vis));
    CHECK_STR_EQ(vis, "2,3"); /* no UUIDs on that node: indices */
    json_decref(one);
    json_decref(two);
    corral_topology_free(nouuid);
    corral_topology_free(t);
}

/* ---- processes ----------------------------------------------------------------------------- */

static int wait_exit(struct corral_proc *p, int *code, int *sig)
{
    struct pollfd pfd = {p->pidfd, POLLIN, 0};
    CHECK(poll(&pfd, 1, 10000) == 1);
    return corral_proc_reap(p, code, sig);
}

/* Whether any process of group pgid is alive (zombies waiting for PID 1 do not count). */
static bool group_alive(pid_t pgid)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    bool alive = false;
    while (!alive && (de = readdir(d))) {
        char path[300], buf[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(buf, sizeof(buf), f)) {
            char *rp = strrchr(buf, ')');
            char state;
            int ppid, pg;
            if (rp && sscanf(rp + 2, "%c %d %d", &state, &ppid, &pg) == 3)
                alive = pg == pgid && state != 'Z';
        }
        fclose(f);
    }
    closedir(d);
    return alive;
}

static void test_proc_spawn(void)
{
    char *dir = make_tmpdir();
    char out_path[300];
    snprintf(out_path, sizeof(out_path), "%s/out", dir);
    int out = open(out_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    char *argv[] = {"sh", "-c", "echo \"$X $(pwd) $$\"; trap - TERM; kill -0 $PPID; exit 7", NULL};
    char *envp[] = {"X=hello", "PATH=/usr/bin:/bin", NULL};
    struct corral_proc_spec spec = {.argv = argv,
                                    .envp = envp,
                                    .cwd = dir,
                                    .stdin_fd = -1,
                                    .stdout_fd = out,
                                    .stderr_fd = -1,
                                    .cgroup_procs_fd = -1};
    struct corral_proc p;
    char err[256];
    CHECK_INT_EQ(corral_proc_spawn(&spec, &p, err, sizeof(err)), 0);
    close(out);
    int code, sig;
    CHECK_INT_EQ(wait_exit(&p, &code, &sig), 1);
    CHECK_INT_EQ(code, 7);
    CHECK_INT_EQ(sig, 0);
    char buf[512] = "";
    FILE *f = fopen(out_path, "r");
    CHECK(fgets(buf, sizeof(buf), f));
    fclose(f);
    char want[400];
    snprintf(want, sizeof(want), "hello %s %d\n", dir, (int)p.pid);
    CHECK_STR_EQ(buf, want);

    /* a new session: signals reach the whole group */
    char *group[] = {"sh", "-c", "sleep 30 & sleep 30; exit 0", NULL};
    spec.argv = group;
    spec.stdout_fd = -1;
    CHECK_INT_EQ(corral_proc_spawn(&spec, &p, err, sizeof(err)), 0);
    CHECK_INT_EQ(getsid(p.pid), p.pid);
    usleep(100000);
    CHECK_INT_EQ(corral_proc_signal_group(&p, SIGKILL), 0);
    CHECK_INT_EQ(wait_exit(&p, &code, &sig), 1);
    CHECK_INT_EQ(sig, SIGKILL);
    CHECK_INT_EQ(code, 128 + SIGKILL);
    for (int i = 0; i < 100 && group_alive(p.pid); i++)
        usleep(10000);
    CHECK(!group_alive(p.pid)); /* the background sleep went too */

    /* failures are errors, not exit codes */
    char *nope[] = {"no-such-program-corral", NULL};
    spec.argv = nope;
    CHECK_INT_EQ(corral_proc_spawn(&spec, &p, err, sizeof(err)), -ENOENT);
    CHECK_STR_EQ(err, "exec: \"no-such-program-corral\": executable file not found in $PATH");
    char *ok[] = {"true", NULL};
    spec.argv = ok;
    spec.cwd = "/nonexistent-dir";
    CHECK_INT_EQ(corral_proc_spawn(&spec, &p, err, sizeof(err)), -ENOENT);
    CHECK_STR_CONTAINS(err, "chdir to working directory \"/nonexistent-dir\"");
    char *notexec[] = {out_path, NULL};
    spec.argv = notexec;
    spec.cwd = NULL;
    CHECK_INT_EQ(corral_proc_spawn(&spec, &p, err, sizeof(err)), -EACCES);
    rm_tree(dir);
}

static void test_proc_find_executable(void)
{
    char out[256];
    char *env[] = {"PATH=/nonexistent:/bin", NULL};
    CHECK_INT_EQ(corral_proc_find_executable("sh", env, out, sizeof(out)), 0);
    CHECK_STR_EQ(out, "/bin/sh");
    CHECK_INT_EQ(corral_proc_find_executable("/bin/sh", NULL, out, sizeof(out)), 0);
    CHECK_INT_EQ(corral_proc_find_executable("nope-nope", env, out, sizeof(out)), -ENOENT);
    CHECK_INT_EQ(corral_proc_find_executable("", env, out, sizeof(out)), -ENOENT);
}

/* ---- cgroups ------------------------------------------------------------------------------- */

static void test_cgroup_cpu_max(void)
{
    char line[64];
    corral_cgroup_cpu_max(500, line, sizeof(line));
    CHECK_STR_EQ(line, "50000 100000");
    corral_cgroup_cpu_max(2000, line, sizeof(line));
    CHECK_STR_EQ(line, "200000 100000");
    corral_cgroup_cpu_max(1, line, sizeof(line));
    CHECK_STR_EQ(line, "1000 100000"); /* the kernel's 1 ms minimum */
    corral_cgroup_cpu_max(0, line, sizeof(line));
    CHECK_STR_EQ(line, "max 100000");
}

static void test_cgroup_on_this_host(void)
{
    struct corral_cgroups cg;
    char node[64];
    snprintf(node, sizeof(node), "unit-%d", (int)getpid());
    corral_cgroup_init(&cg, node);
    CHECK(cg.status[0] != '\0'); /* always says what it found */
    fprintf(stderr, "cgroups here: %s\n", cg.status);
    if (!cg.usable)
        return;
    char path[1100];
    CHECK_INT_EQ(corral_cgroup_create(&cg, "uid-1", "app", 500, 64 << 20, path, sizeof(path)), 0);
    int procs = corral_cgroup_open_procs(path);
    CHECK(procs >= 0);
    char *argv[] = {"sleep", "30", NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct corral_proc_spec spec = {.argv = argv,
                                    .envp = envp,
                                    .stdin_fd = -1,
                                    .stdout_fd = -1,
                                    .stderr_fd = -1,
                                    .cgroup_procs_fd = procs};
    struct corral_proc p;
    char err[256];
    CHECK_INT_EQ(corral_proc_spawn(&spec, &p, err, sizeof(err)), 0);
    close(procs);
    CHECK_INT_EQ(corral_cgroup_count(path), 1);
    char self[1200], line[1200];
    snprintf(self, sizeof(self), "/proc/%d/cgroup", (int)p.pid);
    FILE *f = fopen(self, "r");
    bool found = false;
    while (fgets(line, sizeof(line), f))
        found |= strncmp(line, "0::", 3) == 0 && strstr(line, "/pod-uid-1/app") != NULL;
    fclose(f);
    CHECK(found);
    if (cg.cpu) {
        FILE *cpu;
        snprintf(self, sizeof(self), "%s/cpu.max", path);
        CHECK((cpu = fopen(self, "r")) != NULL);
        CHECK(fgets(line, sizeof(line), cpu));
        CHECK_STR_EQ(line, "50000 100000\n");
        fclose(cpu);
    }
    CHECK_INT_EQ(corral_cgroup_kill(path), 0);
    int code, sig;
    CHECK_INT_EQ(wait_exit(&p, &code, &sig), 1);
    CHECK_INT_EQ(sig, SIGKILL);
    CHECK_INT_EQ(corral_cgroup_remove(path), 0);
    CHECK(access(path, F_OK) < 0);
    rmdir(cg.root);
}

CORRAL_TESTS(CORRAL_TEST(plan_env_and_argv), CORRAL_TEST(plan_errors), CORRAL_TEST(expand),
             CORRAL_TEST(log_format_and_query), CORRAL_TEST(log_rotation_and_follow),
             CORRAL_TEST(gpu_admission), CORRAL_TEST(gpu_island_preference),
             CORRAL_TEST(proc_spawn), CORRAL_TEST(proc_find_executable),
             CORRAL_TEST(cgroup_cpu_max), CORRAL_TEST(cgroup_on_this_host))
