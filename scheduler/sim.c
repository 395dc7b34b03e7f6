/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sim: `corral sim`, replaying a node list and a pod list through the real framework and
 * plugins with no apiserver.
 *
 * For the Alibaba trace it reproduces the published experiment
 * (../shared/alibaba-gpu-2023/NOTES.md §3): pods shuffled with the seed, the workload tuned to
 * 130 % of the cluster's GPU capacity by resampling with replacement (or trimmed at random when
 * above), then an arrival-only replay: each pod is scheduled once when it arrives or fails, and
 * nothing leaves. After every pod it records (arrived GPU demand, allocated GPU share); the
 * curve is that log binned by arrived demand rounded to whole percent, each bin the mean of
 * its points (an empty bin takes the mean of its neighbours). YAML lists replay in file order
 * without tuning unless asked. Time in the simulation is virtual: one second per arrival.
 *
 * The last lines printed are the interface scripts rely on:
 *   unallocated_gpu_pct_at_100=X.XX  placed=N  failed=N  placements_per_s=N
 * placements_per_s counts the pods bound per second of the replaying thread's CPU time (the
 * replay is single-threaded), so it measures one core even on a busy machine. Before them,
 * placement_hash=H (16 hex digits) digests every outcome in order (pod, node, GPUs and share
 * for a binding; pod for a failure; victim for an eviction): two runs that place every pod
 * alike print the same hash, which is how speed work shows it changed no placement.
 */
#include "embedded.h"
#include "framework.h"
#include "profile.h"
#include "scheduler.h"
#include "snapshot.h"
#include "trace.h"

#include "error.h"
#include "log.h"
#include "meta.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_BIN 400

struct sim_opts {
    const char *nodes, *pods, *profile, *policy, *plugin_dir, *curve_csv;
    uint64_t seed;
    double tune; /* < 0: default for the format */
    int shuffle; /* -1: default for the format */
    int curve_step;
    bool verbose, quiet, no_cache;
};

struct sim {
    struct sim_opts o;
    struct corral_sched_config *cfg;
    struct corral_snapshot *snap;
    struct corral_framework *fw;
    struct corral_pod **pods;
    size_t n_pods, n_from_file;
    json_t *others;
    uint64_t rng;
    uint64_t clock_ms;
    uint64_t arrived_milli;
    double bin_sum[MAX_BIN + 1];
    uint32_t bin_n[MAX_BIN + 1];
    uint64_t evicted;
    uint64_t placement_hash; /* FNV-1a over the outcomes, see the head comment */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: corral sim --nodes FILE --pods FILE [--seed N] [--profile FILE | --policy NAME]\n"
            "                  [--tune X] [--shuffle | --no-shuffle] [--plugin-dir DIR]\n"
            "                  [--curve-step N] [--curve-csv FILE] [--no-cache] [--verbose] [--quiet]\n\n"
            "Replays a node list and a pod list (Alibaba trace CSV or Kubernetes YAML/JSON lists)\n"
            "through the scheduler framework and plugins, with no apiserver.\n\n"
            "  --seed N         shuffles pods (and node order) and breaks ties (default 42)\n"
            "  --profile FILE   scheduler configuration (default: the built-in default profile)\n"
            "  --policy NAME    a shipped profile: default, random, dotprod, gpuclustering,\n"
            "                   gpupacking, bestfit, fgd\n"
            "  --tune X         resample/trim the pods to X times the GPU capacity\n"
            "                   (default 1.3 for CSV traces, off for YAML)\n"
            "  --shuffle        shuffle pods with the seed (default for CSV traces)\n"
            "  --curve-step N   print the allocation curve every N %% of arrived demand (5)\n"
            "  --curve-csv FILE write the whole curve (arrived_pct,alloc_pct) to FILE\n"
            "  --no-cache       evaluate every node for every pod (to measure the cache)\n"
            "  --verbose        print each binding and why each failed pod failed\n"
            "  --quiet          print only the summary lines\n");
}

static int parse_opts(int argc, char **argv, struct sim_opts *o)
{
    static const struct option longopts[] = {
        {"nodes", required_argument, 0, 'n'},      {"pods", required_argument, 0, 'p'},
        {"seed", required_argument, 0, 's'},       {"profile", required_argument, 0, 'f'},
        {"policy", required_argument, 0, 'P'},     {"tune", required_argument, 0, 't'},
        {"shuffle", no_argument, 0, 'S'},          {"no-shuffle", no_argument, 0, 'N'},
        {"plugin-dir", required_argument, 0, 'd'}, {"curve-step", required_argument, 0, 'c'},
        {"curve-csv", required_argument, 0, 'C'},  {"verbose", no_argument, 0, 'v'},
        {"quiet", no_argument, 0, 'q'},            {"help", no_argument, 0, 'h'},
        {"no-cache", no_argument, 0, 'X'},
        {0, 0, 0, 0},
    };
    *o = (struct sim_opts){.seed = 42, .tune = -1, .shuffle = -1, .curve_step = 5};
    optind = 1;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'n': o->nodes = optarg; break;
        case 'p': o->pods = optarg; break;
        case 'f': o->profile = optarg; break;
        case 'P': o->policy = optarg; break;
        case 'd': o->plugin_dir = optarg; break;
        case 'C': o->curve_csv = optarg; break;
        case 'S': o->shuffle = 1; break;
        case 'N': o->shuffle = 0; break;
        case 'v': o->verbose = true; break;
        case 'q': o->quiet = true; break;
        case 'X': o->no_cache = true; break;
        case 'h': usage(stdout); return 1;
        case 's':
            o->seed = strtoull(optarg, &end, 10);
            if (*end || !*optarg) {
                fprintf(stderr, "corral sim: --seed: \"%s\" is not a number\n", optarg);
                return -1;
            }
            break;
        case 't':
            o->tune = strtod(optarg, &end);
            if (*end || o->tune < 0 || o->tune > 100) {
                fprintf(stderr, "corral sim: --tune: \"%s\" is not a factor in [0, 100]\n",
                        optarg);
                return -1;
            }
            break;
        case 'c':
            o->curve_step = (int)strtol(optarg, &end, 10);
            if (*end || o->curve_step < 1 || o->curve_step > 100) {
                fprintf(stderr, "corral sim: --curve-step: must be 1..100\n");
                return -1;
            }
            break;
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "corral sim: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    if (!o->nodes || !o->pods) {
        fprintf(stderr, "corral sim: --nodes and --pods are required\n");
        usage(stderr);
        return -1;
    }
    if (o->profile && o->policy) {
        fprintf(stderr, "corral sim: --profile and --policy are exclusive\n");
        return -1;
    }
    return 0;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return n ? rng_next(s) % n : 0;
}

static void shuffle_json(json_t *arr, uint64_t *rng)
{
    size_t n = json_array_size(arr);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(rng, i);
        json_t *a = json_incref(json_array_get(arr, i - 1));
        json_t *b = json_incref(json_array_get(arr, j));
        json_array_set_new(arr, i - 1, b);
        json_array_set_new(arr, j, a);
    }
}

/* ---- configuration ---- */

static int load_config(struct sim *sim)
{
    char err[1024] = "";
    int rc;
    if (sim->o.profile) {
        rc = corral_sched_config_load(sim->o.profile, &sim->cfg, err, sizeof(err));
    } else {
        const char *name = sim->o.policy ? sim->o.policy : "default";
        const struct corral_embedded_profile *ep = corral_embedded_profile(name);
        if (!ep) {
            fprintf(stderr, "corral sim: unknown policy \"%s\"; known:", name);
            for (const struct corral_embedded_profile *p = corral_embedded_profiles; p->name; p++)
                fprintf(stderr, " %s", p->name);
            fprintf(stderr, "\n");
            return CORRAL_EINVALID;
        }
        char source[128];
        snprintf(source, sizeof(source), "manifests/profiles/%s.yaml", ep->name);
        rc = corral_sched_config_parse(ep->text, strlen(ep->text), source, &sim->cfg, err,
                                       sizeof(err));
    }
    if (rc < 0)
        fprintf(stderr, "corral sim: %s\n", err);
    return rc;
}

/* ---- nodes ---- */

static int load_nodes(struct sim *sim)
{
    char err[1024] = "";
    json_t *nodes = NULL;
    int rc = corral_trace_load_nodes(sim->o.nodes, &nodes, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "corral sim: %s\n", err);
        return rc;
    }
    shuffle_json(nodes, &sim->rng);
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *name = corral_meta_name(n);
        if (name && corral_snapshot_find(sim->snap, name) >= 0) {
            fprintf(stderr, "corral sim: %s: node %s appears twice\n", sim->o.nodes, name);
            rc = CORRAL_EINVALID;
            break;
        }
        rc = corral_snapshot_upsert_node(sim->snap, json_incref(n), err, sizeof(err));
        if (rc < 0) {
            fprintf(stderr, "corral sim: %s: node %zu (%s): %s\n", sim->o.nodes, i + 1,
                    name ? name : "?", err);
            break;
        }
    }
    json_decref(nodes);
    if (rc >= 0 && sim->snap->live == 0) {
        fprintf(stderr, "corral sim: %s: no nodes\n", sim->o.nodes);
        rc = CORRAL_EINVALID;
    }
    return rc < 0 ? rc : 0;
}

/* ---- pods: shuffle and tune, as the published harness does ---- */

static int64_t json_pod_demand(json_t *obj)
{
    struct corral_pod *pod;
    char err[256];
    if (corral_pod_new(json_incref(obj), &pod, err, sizeof(err)) < 0)
        return 0;
    int64_t d = corral_pod_gpu_demand(pod);
    corral_pod_free(pod);
    return d;
}

static int tune_up(struct sim *sim, json_t *pods, const int64_t *demand, size_t n, int64_t total,
                   int64_t target)
{
    for (size_t k = 0; n > 0; k++) {
        size_t j = (size_t)rng_below(&sim->rng, n);
        if (total + demand[j] > target)
            break;
        total += demand[j];
        json_t *clone = json_deep_copy(json_array_get(pods, j));
        char name[320];
        snprintf(name, sizeof(name), "%s-tuned-%zu", corral_meta_name(clone), k);
        json_object_set_new(corral_meta_get(clone, true), "name", json_string(name));
        if (json_array_append_new(pods, clone) < 0)
            return -ENOMEM;
    }
    return 0;
}

static int tune(struct sim *sim, json_t *pods)
{
    double factor = sim->o.tune;
    if (factor <= 0)
        return 0;
    size_t n = json_array_size(pods);
    int64_t *demand = calloc(n + 1, sizeof(int64_t));
    if (!demand)
        return -ENOMEM;
    int64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += demand[i] = json_pod_demand(json_array_get(pods, i));
    int64_t target = (int64_t)(factor * (double)sim->snap->total_gpu_milli);
    int rc = 0;
    if (total < target) {
        rc = tune_up(sim, pods, demand, n, total, target);
    } else {
        while (total > target && json_array_size(pods) > 0) {
            size_t j = (size_t)rng_below(&sim->rng, json_array_size(pods));
            total -= json_pod_demand(json_array_get(pods, j));
            json_array_remove(pods, j);
        }
    }
    free(demand);
    return rc;
}

static int cmp_by_name(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    return strcmp(corral_meta_name(x) ? corral_meta_name(x) : "",
                  corral_meta_name(y) ? corral_meta_name(y) : "");
}

static int sort_by_name(json_t *pods)
{
    size_t n = json_array_size(pods);
    json_t **v = calloc(n + 1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(pods, i));
    qsort(v, n, sizeof(*v), cmp_by_name);
    for (size_t i = 0; i < n; i++)
        json_array_set_new(pods, i, v[i]);
    free(v);
    return 0;
}

static int build_pods(struct sim *sim, json_t *pods)
{
    size_t n = json_array_size(pods);
    sim->pods = calloc(n + 1, sizeof(*sim->pods));
    if (!sim->pods)
        return -ENOMEM;
    const char *sched = sim->cfg->profiles[0].scheduler_name;
    for (size_t i = 0; i < n; i++) {
        json_t *obj = json_array_get(pods, i);
        json_t *spec = json_object_get(obj, "spec");
        if (json_is_object(spec) && !json_object_get(spec, "schedulerName"))
            json_object_set_new(spec, "schedulerName", json_string(sched));
        char err[512];
        int rc = corral_pod_new(json_incref(obj), &sim->pods[i], err, sizeof(err));
        if (rc < 0) {
            const char *name = corral_meta_name(obj);
            fprintf(stderr, "corral sim: %s: pod %s: %s\n", sim->o.pods, name ? name : "?",
                    err);
            return rc;
        }
        sim->n_pods++;
    }
    return 0;
}

static int load_pods(struct sim *sim)
{
    char err[1024] = "";
    json_t *pods = NULL;
    bool csv = corral_trace_is_csv(sim->o.pods);
    int rc = corral_trace_load_pods(sim->o.pods, &pods, &sim->others, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "corral sim: %s\n", err);
        return rc;
    }
    sim->n_from_file = json_array_size(pods);
    if (sim->o.shuffle < 0)
        sim->o.shuffle = csv;
    if (sim->o.tune < 0)
        sim->o.tune = csv ? 1.3 : 0;
    if (csv)
        rc = sort_by_name(pods);
    if (rc == 0 && sim->o.shuffle)
        shuffle_json(pods, &sim->rng);
    if (rc == 0)
        rc = tune(sim, pods);
    if (rc == 0)
        rc = build_pods(sim, pods);
    json_decref(pods);
    return rc;
}

/* ---- typical tasks for the published FGD policy (its oracle knowledge of the workload) ---- */

struct task_count {
    int64_t cpu, gpus, milli;
    const char *models;
    uint32_t count;
};

static int cmp_count(const void *a, const void *b)
{
    const struct task_count *x = a, *y = b;
    return (x->count < y->count) - (x->count > y->count);
}

static void task_of(const struct corral_pod *pod, struct task_count *t)
{
    const char *m = json_string_value(json_object_get(pod->annotations, "corral.io/gpu-models"));
    t->cpu = pod->req[CORRAL_RES_CPU];
    t->gpus = pod->req[CORRAL_RES_GPU] ? pod->req[CORRAL_RES_GPU] : (pod->req[CORRAL_RES_GPU_MILLI] > 0);
    t->milli = pod->req[CORRAL_RES_GPU] ? 1000 : pod->req[CORRAL_RES_GPU_MILLI];
    t->models = m ? m : "";
    t->count = 1;
}

static json_t *workload_tasks(struct sim *sim, double coverage)
{
    struct task_count *t = calloc(sim->n_pods + 1, sizeof(*t));
    size_t n = 0;
    if (!t)
        return NULL;
    for (size_t i = 0; i < sim->n_pods; i++) {
        struct task_count one;
        task_of(sim->pods[i], &one);
        size_t j = 0;
        while (j < n && !(t[j].cpu == one.cpu && t[j].gpus == one.gpus &&
                          t[j].milli == one.milli && strcmp(t[j].models, one.models) == 0))
            j++;
        if (j == n)
            t[n++] = one;
        else
            t[j].count++;
    }
    qsort(t, n, sizeof(*t), cmp_count);
    json_t *out = json_array();
    uint64_t covered = 0;
    for (size_t j = 0; j < n && out && (double)covered < coverage * (double)sim->n_pods; j++) {
        covered += t[j].count;
        json_array_append_new(out, json_pack("{s:I, s:I, s:I, s:s, s:I}", "cpu",
                                             (json_int_t)t[j].cpu, "gpus", (json_int_t)t[j].gpus,
                                             "gpuMilli", (json_int_t)t[j].milli, "models",
                                             t[j].models, "count", (json_int_t)t[j].count));
    }
    free(t);
    return out;
}

/* Replaces `typicalTasks: workload` in any plugin's arguments with the replay's tasks. */
static int fill_workload_tasks(struct sim *sim)
{
    for (uint32_t p = 0; p < sim->cfg->n_profiles; p++) {
        const char *k;
        json_t *args;
        json_object_foreach(sim->cfg->profiles[p].plugin_args, k, args)
        {
            const char *v = json_string_value(json_object_get(args, "typicalTasks"));
            if (!v || strcmp(v, "workload") != 0)
                continue;
            json_t *tasks = workload_tasks(sim, 0.95);
            if (!tasks || json_object_set_new(args, "typicalTasks", tasks) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

/* ---- replay ---- */

/* Folds one outcome (kind, pod, node, GPU positions, share) into the placement hash. */
static void fold_outcome(struct sim *sim, uint64_t kind, const struct corral_pod *pod,
                         uint64_t node, uint64_t gpus, uint64_t milli)
{
    const uint64_t words[5] = {kind, pod->seq, node, gpus, milli};
    const unsigned char *b = (const unsigned char *)words;
    uint64_t h = sim->placement_hash;
    for (size_t i = 0; i < sizeof(words); i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    sim->placement_hash = h;
}

static int sim_bind(void *arg, struct corral_pod *pod, uint32_t node)
{
    struct sim *sim = arg;
    fold_outcome(sim, 1, pod, node, pod->gpus, pod->gpus ? (uint64_t)pod->gpu_milli : 0);
    if (!sim->o.verbose)
        return 0; /* the placement in the snapshot is the binding */
    const struct corral_snap_node *nd = &sim->snap->nodes[node];
    printf("bound %s/%s node=%s gpus=", pod->ns, pod->name, nd->name);
    const char *sep = "";
    for (uint32_t g = 0; g < nd->n_gpus; g++)
        if (pod->gpus >> g & 1) {
            printf("%s%d", sep, nd->gpus[g].index);
            sep = ",";
        }
    if (pod->gpus && pod->gpu_milli < 1000)
        printf(" milli=%d", pod->gpu_milli);
    printf("\n");
    return 0;
}

static void sim_unschedulable(void *arg, struct corral_pod *pod, const char *message)
{
    struct sim *sim = arg;
    fold_outcome(sim, 2, pod, 0, 0, 0);
    if (sim->o.verbose)
        printf("failed %s/%s at %.2f%%: %s\n", pod->ns, pod->name,
               100.0 * (double)sim->arrived_milli / (double)sim->snap->total_gpu_milli, message);
}

static void sim_evicted(void *arg, struct corral_pod *victim, const struct corral_pod *by)
{
    struct sim *sim = arg;
    sim->evicted++;
    fold_outcome(sim, 3, victim, by->seq, 0, 0);
    if (sim->o.verbose)
        printf("evicted %s/%s for %s/%s\n", victim->ns, victim->name, by->ns, by->name);
}

static json_t *sim_lookup(void *arg, const char *api_version, const char *kind, const char *ns,
                          const char *name)
{
    struct sim *sim = arg;
    size_t i;
    json_t *o;
    json_array_foreach(sim->others, i, o)
    {
        const char *av = json_string_value(json_object_get(o, "apiVersion"));
        const char *on = corral_meta_namespace(o);
        if (strcmp(json_string_value(json_object_get(o, "kind")), kind) == 0 &&
            (!api_version || (av && strcmp(av, api_version) == 0)) &&
            strcmp(on ? on : "default", ns ? ns : "default") == 0 && corral_meta_name(o) &&
            strcmp(corral_meta_name(o), name) == 0)
            return o;
    }
    return NULL;
}

static uint64_t sim_now(void *arg)
{
    return ((struct sim *)arg)->clock_ms;
}

static void record(struct sim *sim)
{
    double total = (double)sim->snap->total_gpu_milli;
    if (total <= 0)
        return;
    double arrived = 100.0 * (double)sim->arrived_milli / total;
    double alloc = 100.0 * (double)sim->snap->used_gpu_milli / total;
    long bin = lround(arrived);
    if (bin >= 0 && bin <= MAX_BIN) {
        sim->bin_sum[bin] += alloc;
        sim->bin_n[bin]++;
    }
}

static void drain(struct sim *sim)
{
    enum corral_fw_result res;
    struct corral_pod *p;
    while (corral_fw_schedule_next(sim->fw, &res, &p))
        ;
    corral_fw_process_waiting(sim->fw, false);
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int replay(struct sim *sim, double *seconds, double *wall)
{
    uint64_t t0 = corral_now_ns();
    double c0 = cpu_seconds();
    for (size_t i = 0; i < sim->n_pods; i++) {
        struct corral_pod *pod = sim->pods[i];
        sim->pods[i] = NULL;
        sim->arrived_milli += (uint64_t)corral_pod_gpu_demand(pod);
        sim->clock_ms += 1000;
        char name[512];
        snprintf(name, sizeof(name), "%s/%s", pod->ns, pod->name);
        int rc = corral_fw_add_pod(sim->fw, pod);
        if (rc == CORRAL_EEXISTS)
            fprintf(stderr, "corral sim: pod %s appears twice; the second is ignored\n", name);
        else if (rc < 0)
            return rc;
        corral_fw_retry_gated(sim->fw);
        drain(sim);
        record(sim);
    }
    corral_fw_process_waiting(sim->fw, true);
    *seconds = cpu_seconds() - c0;
    *wall = (double)(corral_now_ns() - t0) / 1e9;
    return 0;
}

/* ---- report ---- */

static double bin_value(const struct sim *sim, long b)
{
    if (b < 0 || b > MAX_BIN)
        return NAN;
    if (sim->bin_n[b])
        return sim->bin_sum[b] / sim->bin_n[b];
    double sum = 0;
    int n = 0;
    for (long d = -1; d <= 1; d += 2)
        if (b + d >= 0 && b + d <= MAX_BIN && sim->bin_n[b + d]) {
            sum += sim->bin_sum[b + d] / sim->bin_n[b + d];
            n++;
        }
    return n ? sum / n : NAN;
}

static void print_curve(const struct sim *sim, long last)
{
    FILE *csv = sim->o.curve_csv ? fopen(sim->o.curve_csv, "w") : NULL;
    if (sim->o.curve_csv && !csv)
        fprintf(stderr, "corral sim: %s: %s\n", sim->o.curve_csv, strerror(errno));
    if (csv)
        fprintf(csv, "arrived_pct,alloc_pct\n");
    if (!sim->o.quiet)
        printf("%12s %10s %12s\n", "arrived_pct", "alloc_pct", "unalloc_pct");
    for (long b = 0; b <= last; b++) {
        double v = bin_value(sim, b);
        if (isnan(v))
            continue;
        if (csv)
            fprintf(csv, "%ld,%.4f\n", b, v);
        if (!sim->o.quiet && b % sim->o.curve_step == 0)
            printf("%12ld %10.2f %12.2f\n", b, v, 100 - v);
    }
    if (csv)
        fclose(csv);
}

static void report(struct sim *sim, double seconds, double wall)
{
    uint64_t placed = 0, failed = 0;
    size_t pos = 0;
    void *v;
    while (corral_strmap_next(&sim->fw->pods, &pos, NULL, &v))
        (((struct corral_pod *)v)->state == CORRAL_POD_BOUND) ? placed++ : failed++;
    double total = (double)sim->snap->total_gpu_milli;
    long last = total > 0 ? lround(100.0 * (double)sim->arrived_milli / total) : 0;
    print_curve(sim, last > MAX_BIN ? MAX_BIN : last);
    double at100 = last >= 100 ? bin_value(sim, 100) : NAN;
    const struct corral_fw_stats *st = &sim->fw->stats;
    printf("cache_hits=%llu cache_misses=%llu nodes_evaluated=%llu class_hits=%llu "
           "invalidations=%llu\n",
           (unsigned long long)st->cache_hits, (unsigned long long)st->cache_misses,
           (unsigned long long)st->nodes_evaluated, (unsigned long long)st->class_hits,
           (unsigned long long)st->invalidations);
    printf("arrived_gpu_pct=%.2f\n", total > 0 ? 100.0 * (double)sim->arrived_milli / total : 0);
    printf("final_alloc_gpu_pct=%.2f\n",
           total > 0 ? 100.0 * (double)sim->snap->used_gpu_milli / total : 0);
    printf("evicted=%llu\n", (unsigned long long)sim->evicted);
    printf("placement_hash=%016llx\n", (unsigned long long)sim->placement_hash);
    if (!sim->o.quiet)
        printf("replay_cpu_s=%.3f replay_wall_s=%.3f\n", seconds, wall);
    if (isnan(at100))
        printf("unallocated_gpu_pct_at_100=NA\n");
    else
        printf("unallocated_gpu_pct_at_100=%.2f\n", 100 - at100);
    printf("placed=%llu\nfailed=%llu\n", (unsigned long long)placed, (unsigned long long)failed);
    printf("placements_per_s=%.0f\n", seconds > 0 ? (double)st->bound / seconds : 0);
}

static void sim_free(struct sim *sim)
{
    corral_fw_free(sim->fw);
    for (size_t i = 0; i < sim->n_pods; i++)
        corral_pod_free(sim->pods[i]);
    free(sim->pods);
    corral_snapshot_free(sim->snap);
    corral_sched_config_free(sim->cfg);
    json_decref(sim->others);
}

static int start(struct sim *sim)
{
    char err[1024] = "";
    struct corral_fw_callbacks cb = {
        .arg = sim,
        .bind = sim_bind,
        .unschedulable = sim_unschedulable,
        .evicted = sim_evicted,
        .lookup = sim_lookup,
        .now_ms = sim_now,
    };
    int rc = corral_fw_new(sim->cfg, sim->o.plugin_dir, sim->snap, &cb, sim->o.seed, &sim->fw,
                           err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "corral sim: %s\n", err);
    else
        sim->fw->no_cache = sim->o.no_cache;
    return rc;
}

int corral_sim_main(int argc, char **argv)
{
    struct sim sim = {.placement_hash = 0xcbf29ce484222325ull};
    int rc = parse_opts(argc, argv, &sim.o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    sim.rng = sim.o.seed;
    sim.snap = corral_snapshot_new();
    rc = sim.snap ? load_config(&sim) : -ENOMEM;
    if (rc == 0)
        rc = load_nodes(&sim);
    if (rc == 0)
        rc = load_pods(&sim);
    if (rc == 0)
        rc = fill_workload_tasks(&sim);
    if (rc == 0)
        rc = start(&sim);
    double seconds = 0, wall = 0;
    if (rc == 0 && !sim.o.quiet)
        printf("# corral sim: %u nodes, %.0f GPUs, %zu pods (%zu from %s), seed %llu, %s %s\n",
               sim.snap->live, (double)sim.snap->total_gpu_milli / 1000, sim.n_pods,
               sim.n_from_file, sim.o.pods, (unsigned long long)sim.o.seed,
               sim.o.profile ? "profile" : "policy",
               sim.o.profile ? sim.o.profile : (sim.o.policy ? sim.o.policy : "default"));
    if (rc == 0)
        rc = replay(&sim, &seconds, &wall);
    if (rc == 0)
        report(&sim, seconds, wall);
    else if (rc == -ENOMEM)
        fprintf(stderr, "corral sim: out of memory\n");
    sim_free(&sim);
    return rc == 0 ? 0 : 1;
}
