/* SPDX-License-Identifier: Apache-2.0 */
/*
 * topology: hwloc discovery (see topology.h).
 *
 * Loader warnings. hwloc's XML importer reports what it skips ("ignoring object text content",
 * "ignoring unexpected node class", version mismatches) with fprintf(stderr) and carries on,
 * silently dropping objects. Most of those messages are printed only when HWLOC_XML_VERBOSE is
 * set, and hwloc reads that variable once per process. So before the first load we set
 * HWLOC_XML_VERBOSE=1, and around hwloc_topology_set_xml()/load() we point file descriptor 2
 * at an anonymous memory file; whatever hwloc (or libxml2 under it) wrote there is the warning
 * text, and any of it fails an XML load. The redirection is process-wide, so topologies are
 * loaded at start-up, before the agent starts threads; concurrent loads are serialised by a
 * mutex. A file is read by hwloc's own XML reader first (libxml2 is not even loaded, see
 * set_plugin_blacklist()); that reader refuses, rather than skips, what it does not expect,
 * and a file it refuses is read again with libxml2, whose warnings are then the error.
 *
 * GPUs. An NVIDIA GPU is a PCI device with vendor 0x10de and a display-class id (0x03xx: VGA
 * 0x0300 for GeForce/Quadro, 3D 0x0302 for datacenter parts). Its OS devices (CUDA, NVML,
 * OpenCL) add the driver's model name, memory size and UUID where the exporter had them. NVLink
 * comes from the "NVLinkBandwidth" distance matrix between NVML OS devices (merged through
 * NVSwitches first); without it NVLink is "not recorded", which is not the same as "absent".
 */
#include "topology.h"

#include "cuda.h"
#include "log.h"
#include "nvml.h"

#include <errno.h>
#include <fcntl.h>
#include <hwloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#define SUBSYS "topology"

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Reads what was written to fd (from offset 0) into a malloc'd string. NULL when empty. */
static char *slurp_fd(int fd)
{
    off_t size = lseek(fd, 0, SEEK_END);
    if (size <= 0 || lseek(fd, 0, SEEK_SET) != 0)
        return NULL;
    char *buf = malloc((size_t)size + 1);
    if (!buf)
        return NULL;
    ssize_t got = pread(fd, buf, (size_t)size, 0);
    if (got <= 0) {
        free(buf);
        return NULL;
    }
    buf[got] = '\0';
    while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == ' '))
        buf[--got] = '\0';
    return buf;
}

struct capture {
    int mfd, saved;
};

/* Points stderr at an anonymous memory file (or leaves it alone if that fails). */
static void capture_begin(struct capture *c)
{
    c->mfd = memfd_create("corral-hwloc-stderr", MFD_CLOEXEC);
    c->saved = c->mfd >= 0 ? dup(STDERR_FILENO) : -1;
    fflush(stderr);
    if (c->saved >= 0)
        dup2(c->mfd, STDERR_FILENO);
}

/* Restores stderr. Returns what was written meanwhile (caller frees) or NULL. */
static char *capture_end(struct capture *c)
{
    int saved_errno = errno;
    char *text = NULL;
    fflush(stderr);
    if (c->saved >= 0) {
        dup2(c->saved, STDERR_FILENO);
        close(c->saved);
        text = slurp_fd(c->mfd);
    }
    if (c->mfd >= 0)
        close(c->mfd);
    errno = saved_errno;
    return text;
}

/*
 * Live loads skip three optional components: "pci" (libpciaccess, which leaks its device table
 * on every load; the linux component reads the same PCI data from sysfs), "opencl" (initialises
 * every OpenCL ICD, slow) and "gl" (talks to X). NVML and CUDA are asked directly instead. (The
 * plugin blacklist below keeps them from being loaded at all where they are plugins; this
 * covers builds of hwloc that have them built in.)
 */
static void blacklist_slow_components(hwloc_topology_t t)
{
    static const char *const skip[] = {"pci", "opencl", "gl"};
    for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
        hwloc_topology_set_components(t, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, skip[i]);
}

static int open_hwloc(const char *xml_path, hwloc_topology_t *out, char *err, size_t errlen)
{
    hwloc_topology_t t;
    if (hwloc_topology_init(&t) < 0) {
        set_err(err, errlen, "hwloc: cannot initialise a topology");
        return -ENOMEM;
    }
    hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_ALL);
    if (!xml_path)
        blacklist_slow_components(t);
    struct capture cap;
    capture_begin(&cap);
    int rc = xml_path ? hwloc_topology_set_xml(t, xml_path) : 0;
    if (rc == 0)
        rc = hwloc_topology_load(t);
    char *warnings = capture_end(&cap);
    if (rc < 0 || (xml_path && warnings)) {
        int e = rc < 0 && errno ? errno : EINVAL;
        if (warnings)
            set_err(err, errlen, "%s: hwloc %s: %s", xml_path ? xml_path : "live topology",
                    rc < 0 ? "failed" : "warned (objects would be lost)", warnings);
        else
            set_err(err, errlen, "%s: hwloc cannot load it: %s",
                    xml_path ? xml_path : "live topology", strerror(e));
        free(warnings);
        hwloc_topology_destroy(t);
        return -e;
    }
    if (warnings)
        corral_warn(SUBSYS, "hwloc: %s", warnings);
    free(warnings);
    *out = t;
    return 0;
}

static void copy_info(hwloc_obj_t obj, const char *name, char *dst, size_t len)
{
    const char *v = obj ? hwloc_obj_get_info_by_name(obj, name) : NULL;
    snprintf(dst, len, "%s", v ? v : "");
}

static int read_machine(hwloc_topology_t t, struct corral_topology *topo)
{
    hwloc_obj_t root = hwloc_get_root_obj(t);
    copy_info(root, "HostName", topo->hostname, sizeof(topo->hostname));
    copy_info(root, "Architecture", topo->arch, sizeof(topo->arch));
    copy_info(root, "hwlocVersion", topo->exporter_version, sizeof(topo->exporter_version));
    if (!topo->from_xml && !topo->arch[0]) {
        struct utsname u;
        if (uname(&u) == 0)
            snprintf(topo->arch, sizeof(topo->arch), "%s", u.machine);
    }
    topo->packages = (unsigned)hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE);
    topo->cores = (unsigned)hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
    topo->pus = (unsigned)hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
    topo->memory_bytes = root->total_memory;

    int n = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
    topo->numa_nodes = calloc(n > 0 ? (size_t)n : 1, sizeof(int));
    if (!topo->numa_nodes)
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        hwloc_obj_t node = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)i);
        int os = (int)node->os_index, j = (int)topo->nnuma;
        while (j > 0 && topo->numa_nodes[j - 1] > os) { /* keep ascending */
            topo->numa_nodes[j] = topo->numa_nodes[j - 1];
            j--;
        }
        topo->numa_nodes[j] = os;
        topo->nnuma++;
    }
    return 0;
}

static bool is_nvidia_gpu(hwloc_obj_t pci)
{
    return pci->attr->pcidev.vendor_id == CORRAL_PCI_VENDOR_NVIDIA &&
           (pci->attr->pcidev.class_id >> 8) == 0x03;
}

enum backend { BACKEND_OTHER, BACKEND_CUDA, BACKEND_NVML, BACKEND_OPENCL };

/* The software backend of an OS device: subtype, else the Backend info, else the name. */
static enum backend osdev_backend(hwloc_obj_t os)
{
    const char *b = os->subtype;
    if (!b)
        b = hwloc_obj_get_info_by_name(os, "Backend");
    if (b) {
        if (strcasecmp(b, "CUDA") == 0)
            return BACKEND_CUDA;
        if (strcasecmp(b, "NVML") == 0)
            return BACKEND_NVML;
        if (strcasecmp(b, "OpenCL") == 0)
            return BACKEND_OPENCL;
        return BACKEND_OTHER;
    }
    const char *name = os->name ? os->name : "";
    if (strncmp(name, "cuda", 4) == 0)
        return BACKEND_CUDA;
    if (strncmp(name, "nvml", 4) == 0)
        return BACKEND_NVML;
    if (strncmp(name, "opencl", 6) == 0)
        return BACKEND_OPENCL;
    return BACKEND_OTHER;
}

/* True unless the OS device names a vendor other than NVIDIA (edited or odd exports). */
static bool osdev_is_nvidia(hwloc_obj_t os)
{
    const char *v = hwloc_obj_get_info_by_name(os, "GPUVendor");
    return !v || strncasecmp(v, "NVIDIA", 6) == 0;
}

static uint64_t info_kib_to_mib(hwloc_obj_t os, const char *name)
{
    const char *v = hwloc_obj_get_info_by_name(os, name);
    if (!v)
        return 0;
    unsigned long long kib = strtoull(v, NULL, 10); /* hwloc 3.x appends "KiB": ignored */
    return kib / 1024;
}

static bool uuid_usable(const char *uuid)
{
    if (!uuid || strncmp(uuid, "GPU-", 4) != 0)
        return false;
    for (const char *p = uuid + 4; *p; p++)
        if (*p != '0' && *p != '-')
            return true;
    return false; /* sanitised to all zeros */
}

/* Takes what one OS device knows. NVML names win over CUDA over OpenCL. */
static void apply_osdev(struct corral_gpu *g, hwloc_obj_t os, unsigned *name_rank)
{
    static const unsigned rank[] = {
        [BACKEND_OTHER] = 0, [BACKEND_OPENCL] = 1, [BACKEND_CUDA] = 2, [BACKEND_NVML] = 3};
    static const unsigned src[] = {[BACKEND_OTHER] = 0,
                                   [BACKEND_OPENCL] = CORRAL_GPU_SRC_OPENCL,
                                   [BACKEND_CUDA] = CORRAL_GPU_SRC_CUDA,
                                   [BACKEND_NVML] = CORRAL_GPU_SRC_NVML};
    enum backend b = osdev_backend(os);
    if (b == BACKEND_OTHER || !osdev_is_nvidia(os))
        return;
    g->sources |= src[b];
    const char *model = hwloc_obj_get_info_by_name(os, "GPUModel");
    if (model && rank[b] > *name_rank) {
        snprintf(g->name, sizeof(g->name), "%s", model);
        *name_rank = rank[b];
    }
    if (b == BACKEND_NVML && uuid_usable(hwloc_obj_get_info_by_name(os, "NVIDIAUUID")))
        snprintf(g->uuid, sizeof(g->uuid), "%s", hwloc_obj_get_info_by_name(os, "NVIDIAUUID"));
    uint64_t mib = 0;
    if (b == BACKEND_CUDA)
        mib = info_kib_to_mib(os, "CUDAGlobalMemorySize");
    else if (b == BACKEND_OPENCL)
        mib = info_kib_to_mib(os, "OpenCLGlobalMemorySize");
    if (mib && (b == BACKEND_CUDA || !g->memory_mib))
        g->memory_mib = mib;
}

static int numa_of(hwloc_topology_t t, hwloc_obj_t obj)
{
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(t, obj);
    if (!anc || !anc->nodeset || hwloc_bitmap_iszero(anc->nodeset))
        return -1;
    return hwloc_bitmap_first(anc->nodeset);
}

static void fill_from_pci(hwloc_topology_t t, hwloc_obj_t pci, struct corral_gpu *g)
{
    const struct hwloc_pcidev_attr_s *a = &pci->attr->pcidev;
    snprintf(g->bus_id, sizeof(g->bus_id), "%04x:%02x:%02x.%01x", a->domain, a->bus, a->dev,
             a->func);
    g->vendor_id = a->vendor_id;
    g->device_id = a->device_id;
    g->sources = CORRAL_GPU_SRC_PCI;
    g->cc_major = g->cc_minor = -1;
    g->island = -1;
    g->healthy = true;
    g->numa_node = numa_of(t, pci);
    unsigned name_rank = 0;
    for (hwloc_obj_t c = pci->io_first_child; c; c = c->next_sibling)
        if (c->type == HWLOC_OBJ_OS_DEVICE)
            apply_osdev(g, c, &name_rank);
}

/* Fills in what the model table knows and the GPU's own data did not say. */
static void apply_db(struct corral_gpu *g)
{
    g->db = corral_gpudb_lookup(g->device_id);
    if (!g->db)
        g->db = corral_gpudb_lookup_name(g->name);
    if (!g->db)
        return;
    if (!g->name[0])
        snprintf(g->name, sizeof(g->name), "%s", g->db->product);
    if (!g->memory_mib)
        g->memory_mib = g->db->memory_mib;
    if (g->cc_major < 0) {
        g->cc_major = g->db->cc_major;
        g->cc_minor = g->db->cc_minor;
    }
}

static int cmp_gpu_bus(const void *a, const void *b)
{
    const struct corral_gpu *x = a, *y = b;
    return strcmp(x->bus_id, y->bus_id); /* fixed-width lower-case hex: text order is bus order */
}

/* The hwloc PCI objects of topo's GPUs, in index order (caller frees). */
static int collect_gpus(hwloc_topology_t t, struct corral_topology *topo, hwloc_obj_t **pcis)
{
    size_t cap = 0;
    for (hwloc_obj_t p = NULL; (p = hwloc_get_next_pcidev(t, p));)
        cap += is_nvidia_gpu(p);
    topo->gpus = calloc(cap ? cap : 1, sizeof(*topo->gpus));
    *pcis = calloc(cap ? cap : 1, sizeof(**pcis));
    if (!topo->gpus || !*pcis)
        return -ENOMEM;
    for (hwloc_obj_t p = NULL; (p = hwloc_get_next_pcidev(t, p));) {
        if (!is_nvidia_gpu(p))
            continue;
        fill_from_pci(t, p, &topo->gpus[topo->ngpus]);
        apply_db(&topo->gpus[topo->ngpus]);
        topo->ngpus++;
    }
    qsort(topo->gpus, topo->ngpus, sizeof(*topo->gpus), cmp_gpu_bus);
    for (size_t i = 0; i < topo->ngpus; i++) {
        struct corral_gpu *g = &topo->gpus[i];
        unsigned dom, bus, dev, fn;
        g->index = (int)i;
        if (sscanf(g->bus_id, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) == 4)
            (*pcis)[i] = hwloc_get_pcidev_by_busid(t, dom, bus, dev, fn);
    }
    return 0;
}

/* Drops UUIDs that are not unique on this machine (exports sometimes sanitise them). */
static void dedupe_uuids(struct corral_topology *topo)
{
    for (size_t i = 0; i < topo->ngpus; i++)
        for (size_t j = i + 1; j < topo->ngpus; j++)
            if (topo->gpus[i].uuid[0] && strcmp(topo->gpus[i].uuid, topo->gpus[j].uuid) == 0) {
                corral_warn(SUBSYS, "GPUs %s and %s share UUID %s; not publishing UUIDs",
                            topo->gpus[i].bus_id, topo->gpus[j].bus_id, topo->gpus[i].uuid);
                for (size_t k = 0; k < topo->ngpus; k++)
                    topo->gpus[k].uuid[0] = '\0';
                return;
            }
}

/* ---- NVLink ---------------------------------------------------------------------------- */

static int add_link(struct corral_gpu *g, int peer, uint64_t mbps)
{
    for (size_t i = 0; i < g->nlinks; i++)
        if (g->links[i].peer == peer) {
            if (mbps > g->links[i].bandwidth_mbps)
                g->links[i].bandwidth_mbps = mbps;
            return 0;
        }
    struct corral_gpu_link *l = realloc(g->links, (g->nlinks + 1) * sizeof(*l));
    if (!l)
        return -ENOMEM;
    g->links = l;
    g->links[g->nlinks++] = (struct corral_gpu_link){peer, mbps};
    return 0;
}

static int uf_find(int *parent, int i)
{
    while (parent[i] != i)
        i = parent[i] = parent[parent[i]];
    return i;
}

/*
 * Numbers islands among GPUs with in_matrix[i] set: connected components of the link graph,
 * numbered in order of their lowest GPU index. Others get -1.
 */
static int build_islands(struct corral_topology *topo, const bool *in_matrix)
{
    size_t n = topo->ngpus;
    int *parent = malloc((n ? n : 1) * sizeof(int));
    int *number = malloc((n ? n : 1) * sizeof(int));
    if (!parent || !number) {
        free(parent);
        free(number);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        parent[i] = (int)i;
        number[i] = -1;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < topo->gpus[i].nlinks; k++) {
            int a = uf_find(parent, (int)i), b = uf_find(parent, topo->gpus[i].links[k].peer);
            parent[a < b ? b : a] = a < b ? a : b;
        }
    int next = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_matrix[i]) {
            topo->gpus[i].island = -1;
            continue;
        }
        int r = uf_find(parent, (int)i);
        if (number[r] < 0)
            number[r] = next++;
        topo->gpus[i].island = number[r];
    }
    free(parent);
    free(number);
    return 0;
}

/* Index of the GPU whose PCI object is obj (or obj's parent, for an OS device); -1 if none. */
static int gpu_of_obj(hwloc_obj_t *pcis, size_t n, hwloc_obj_t obj)
{
    if (obj && obj->type == HWLOC_OBJ_OS_DEVICE)
        obj = obj->parent;
    for (size_t i = 0; obj && i < n; i++)
        if (pcis[i] == obj)
            return (int)i;
    return -1;
}

static bool has_nvswitch(const struct hwloc_distances_s *d)
{
    for (unsigned i = 0; i < d->nbobjs; i++)
        if (d->objs[i] && d->objs[i]->subtype && strcmp(d->objs[i]->subtype, "NVSwitch") == 0)
            return true;
    return false;
}

static int links_from_matrix(struct corral_topology *topo, hwloc_obj_t *pcis,
                             const struct hwloc_distances_s *d, bool *in_matrix)
{
    unsigned n = d->nbobjs;
    for (unsigned i = 0; i < n; i++) {
        int gi = gpu_of_obj(pcis, topo->ngpus, d->objs[i]);
        if (gi < 0)
            continue;
        in_matrix[gi] = true;
        for (unsigned j = 0; j < n; j++) {
            int gj = gpu_of_obj(pcis, topo->ngpus, d->objs[j]);
            uint64_t v = d->values[i * n + j];
            if (gj < 0 || gj == gi || v == 0)
                continue;
            int rc = add_link(&topo->gpus[gi], gj, v);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int read_nvlink(hwloc_topology_t t, struct corral_topology *topo, hwloc_obj_t *pcis)
{
    struct hwloc_distances_s *d = NULL;
    unsigned nr = 1;
    if (topo->ngpus == 0 || hwloc_distances_get_by_name(t, "NVLinkBandwidth", &nr, &d, 0) < 0 ||
        nr == 0)
        return 0;
    if (has_nvswitch(d)) {
        if (hwloc_distances_transform(t, d, HWLOC_DISTANCES_TRANSFORM_MERGE_SWITCH_PORTS, NULL, 0) <
                0 ||
            hwloc_distances_transform(t, d, HWLOC_DISTANCES_TRANSFORM_TRANSITIVE_CLOSURE, NULL, 0) <
                0)
            corral_warn(SUBSYS, "NVLinkBandwidth: cannot resolve NVSwitch paths: %s",
                        strerror(errno));
    }
    bool *in_matrix = calloc(topo->ngpus, sizeof(bool));
    int rc = in_matrix ? links_from_matrix(topo, pcis, d, in_matrix) : -ENOMEM;
    hwloc_distances_release(t, d);
    for (size_t i = 0; rc == 0 && i < topo->ngpus; i++)
        topo->nvlink_recorded |= in_matrix[i];
    if (rc == 0)
        rc = build_islands(topo, in_matrix);
    free(in_matrix);
    return rc;
}

/* ---- live probes ----------------------------------------------------------------------- */

static int find_bus(const struct corral_topology *topo, const struct corral_gpu_probe *p)
{
    char bus[16];
    snprintf(bus, sizeof(bus), "%04x:%02x:%02x.%01x", p->domain, p->bus, p->dev, p->func);
    for (size_t i = 0; i < topo->ngpus; i++)
        if (strcmp(topo->gpus[i].bus_id, bus) == 0)
            return (int)i;
    return -1;
}

static int find_bus_parts(const struct corral_topology *topo, unsigned dom, unsigned bus,
                          unsigned dev, unsigned fn)
{
    struct corral_gpu_probe p = {.domain = dom, .bus = bus, .dev = dev, .func = fn};
    return find_bus(topo, &p);
}

/* A number from /sys/bus/pci/devices/BUS/ATTR (decimal or 0x-hex), or fallback. */
static long sysfs_pci_value(const char *bus_id, const char *attr, long fallback)
{
    char path[96];
    long v = fallback;
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bus_id, attr);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%li", &v) != 1)
            v = fallback;
        fclose(f);
    }
    return v;
}

static int add_probe_gpu(struct corral_topology *topo, const struct corral_gpu_probe *p)
{
    struct corral_gpu *g = realloc(topo->gpus, (topo->ngpus + 1) * sizeof(*g));
    if (!g)
        return -ENOMEM;
    topo->gpus = g;
    g = &topo->gpus[topo->ngpus++];
    memset(g, 0, sizeof(*g));
    snprintf(g->bus_id, sizeof(g->bus_id), "%04x:%02x:%02x.%01x", p->domain, p->bus, p->dev,
             p->func);
    g->vendor_id = CORRAL_PCI_VENDOR_NVIDIA;
    g->device_id = p->device_id;
    g->cc_major = g->cc_minor = -1;
    g->island = -1;
    g->numa_node = -1;
    g->healthy = true;
    g->numa_node = (int)sysfs_pci_value(g->bus_id, "numa_node", -1);
    if (!g->device_id)
        g->device_id = (uint16_t)sysfs_pci_value(g->bus_id, "device", 0);
    return 0;
}

static void apply_probe(struct corral_gpu *g, const struct corral_gpu_probe *p, unsigned source)
{
    g->sources |= source;
    if (p->name[0])
        snprintf(g->name, sizeof(g->name), "%s", p->name);
    if (uuid_usable(p->uuid))
        snprintf(g->uuid, sizeof(g->uuid), "%s", p->uuid);
    if (p->memory_mib)
        g->memory_mib = p->memory_mib;
    if (p->cc_major >= 0) {
        g->cc_major = p->cc_major;
        g->cc_minor = p->cc_minor;
    }
    if (p->device_id && !g->device_id)
        g->device_id = p->device_id;
    g->healthy = p->healthy;
    g->db = NULL;
    apply_db(g);
}

/* NVLink from probes: direct GPU peers, and all GPUs on NVSwitches reach each other. */
static int probe_links(struct corral_topology *topo, const struct corral_gpu_probe *p, size_t n)
{
    uint64_t *switch_bw = calloc(topo->ngpus ? topo->ngpus : 1, sizeof(uint64_t));
    if (!switch_bw)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int gi = find_bus(topo, &p[i]);
        for (unsigned l = 0; gi >= 0 && rc == 0 && l < p[i].nlinks && l < CORRAL_PROBE_MAX_LINKS;
             l++) {
            if (p[i].links[l].to_switch) {
                switch_bw[gi] += p[i].links[l].bandwidth_mbps;
                continue;
            }
            int gj = find_bus_parts(topo, p[i].links[l].domain, p[i].links[l].bus,
                                    p[i].links[l].dev, p[i].links[l].func);
            if (gj >= 0 && gj != gi) {
                uint64_t have = 0;
                for (size_t k = 0; k < topo->gpus[gi].nlinks; k++)
                    if (topo->gpus[gi].links[k].peer == gj)
                        have = topo->gpus[gi].links[k].bandwidth_mbps;
                rc = add_link(&topo->gpus[gi], gj, have + p[i].links[l].bandwidth_mbps);
            }
        }
    }
    for (size_t i = 0; rc == 0 && i < topo->ngpus; i++)
        for (size_t j = 0; rc == 0 && j < topo->ngpus; j++)
            if (i != j && switch_bw[i] && switch_bw[j])
                rc = add_link(&topo->gpus[i], (int)j,
                              switch_bw[i] < switch_bw[j] ? switch_bw[i] : switch_bw[j]);
    free(switch_bw);
    return rc;
}

static void clear_links(struct corral_topology *topo)
{
    for (size_t i = 0; i < topo->ngpus; i++) {
        free(topo->gpus[i].links);
        topo->gpus[i].links = NULL;
        topo->gpus[i].nlinks = 0;
    }
}

int corral_topology_merge_probe(struct corral_topology *topo, const struct corral_gpu_probe *p,
                                size_t n, unsigned source)
{
    size_t before = topo->ngpus;
    for (size_t i = 0; i < n; i++)
        if (find_bus(topo, &p[i]) < 0 && add_probe_gpu(topo, &p[i]) < 0)
            return -ENOMEM;
    if (topo->ngpus != before) { /* new GPUs shift indices: hwloc's links no longer apply */
        clear_links(topo);
        topo->nvlink_recorded = false;
        for (size_t i = 0; i < topo->ngpus; i++)
            topo->gpus[i].island = -1;
    }
    qsort(topo->gpus, topo->ngpus, sizeof(*topo->gpus), cmp_gpu_bus);
    for (size_t i = 0; i < topo->ngpus; i++)
        topo->gpus[i].index = (int)i;
    for (size_t i = 0; i < n; i++)
        apply_probe(&topo->gpus[find_bus(topo, &p[i])], &p[i], source);
    if (n == 0) {
        for (size_t i = 0; source == CORRAL_GPU_SRC_LIVE_NVML && i < topo->ngpus; i++)
            topo->gpus[i].healthy = false;
        return 0;
    }
    if (source != CORRAL_GPU_SRC_LIVE_NVML) { /* the CUDA driver API says nothing of NVLink */
        dedupe_uuids(topo);
        return 0;
    }
    clear_links(topo);
    int rc = probe_links(topo, p, n);
    bool *covered = calloc(topo->ngpus ? topo->ngpus : 1, sizeof(bool));
    if (rc < 0 || !covered) {
        free(covered);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        covered[find_bus(topo, &p[i])] = true;
    for (size_t i = 0; source == CORRAL_GPU_SRC_LIVE_NVML && i < topo->ngpus; i++)
        if (!covered[i]) /* on the PCI bus, but NVML cannot talk to it */
            topo->gpus[i].healthy = false;
    topo->nvlink_recorded = true;
    rc = build_islands(topo, covered);
    free(covered);
    dedupe_uuids(topo);
    return rc;
}

static void probe_live(struct corral_topology *topo)
{
    struct corral_gpu_probe *p = NULL;
    size_t n = 0;
    char why[160] = "";
    int rc = corral_nvml_probe(&p, &n, why, sizeof(why));
    unsigned source = CORRAL_GPU_SRC_LIVE_NVML;
    const char *lib = "nvml";
    if (rc < 0) {
        corral_debug(SUBSYS, "NVML: %s", why);
        rc = corral_cuda_probe(&p, &n, why, sizeof(why));
        source = CORRAL_GPU_SRC_LIVE_CUDA;
        lib = "cuda";
    }
    if (rc < 0) {
        corral_debug(SUBSYS, "CUDA driver: %s", why);
        snprintf(topo->gpu_probe, sizeof(topo->gpu_probe), "no NVIDIA driver library (%s)", why);
        return;
    }
    snprintf(topo->gpu_probe, sizeof(topo->gpu_probe), "%s: %zu GPU%s", lib, n, n == 1 ? "" : "s");
    if (corral_topology_merge_probe(topo, p, n, source) < 0)
        corral_warn(SUBSYS, "out of memory merging %s results", lib);
    free(p);
}

/* ---- public ---------------------------------------------------------------------------- */

/*
 * hwloc dlopens every plugin it finds when its first topology is created. corral needs none
 * of them: libpciaccess ("pci") leaks and the linux component reads PCI from sysfs anyway,
 * OpenCL and GL are slow and irrelevant (NVML and CUDA are asked directly), and libxml2 drags
 * in ICU and libstdc++ (~2 MB of the agent's memory) to parse files that hwloc's own XML reader
 * reads identically (checked on every shared topology). hwloc reads HWLOC_PLUGINS_BLACKLIST
 * each time it (re)loads its plugins, i.e. whenever no topology is alive; a user's own list is
 * kept. with_libxml leaves libxml2 allowed, for files hwloc's reader rejects.
 */
static void set_plugin_blacklist(bool with_libxml)
{
    static char user[256];
    static bool saved;
    if (!saved) {
        const char *u = getenv("HWLOC_PLUGINS_BLACKLIST");
        snprintf(user, sizeof(user), "%s", u ? u : "");
        saved = true;
    }
    char list[512];
    snprintf(list, sizeof(list), "%s%shwloc_opencl,hwloc_gl,hwloc_pci%s", user, user[0] ? "," : "",
             with_libxml ? "" : ",hwloc_xml_libxml");
    setenv("HWLOC_PLUGINS_BLACKLIST", list, 1);
}

static int check_readable(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        set_err(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    close(fd);
    return 0;
}

static int fill_topology(hwloc_topology_t t, struct corral_topology *topo)
{
    hwloc_obj_t *pcis = NULL;
    int rc = read_machine(t, topo);
    if (rc == 0)
        rc = collect_gpus(t, topo, &pcis);
    if (rc == 0)
        rc = read_nvlink(t, topo, pcis);
    free(pcis);
    if (rc == 0)
        dedupe_uuids(topo);
    return rc;
}

int corral_topology_load(const char *xml_path, struct corral_topology **out, char *err,
                         size_t errlen)
{
    if (xml_path) {
        int rc = check_readable(xml_path, err, errlen);
        if (rc < 0)
            return rc;
    }
    struct corral_topology *topo = calloc(1, sizeof(*topo));
    if (!topo)
        return -ENOMEM;
    topo->from_xml = xml_path != NULL;
    snprintf(topo->source, sizeof(topo->source), "%s", xml_path ? xml_path : "live");

    hwloc_topology_t t;
    pthread_mutex_lock(&load_lock);
    setenv("HWLOC_XML_VERBOSE", "1", 1);
    set_plugin_blacklist(false);
    int rc = open_hwloc(xml_path, &t, err, errlen);
    if (rc < 0 && xml_path) {
        /* not in the form hwloc writes: let libxml2 have a go, with its precise warnings */
        set_plugin_blacklist(true);
        rc = open_hwloc(xml_path, &t, err, errlen);
    }
    pthread_mutex_unlock(&load_lock);
    if (rc < 0)
        goto err_free;
    rc = fill_topology(t, topo);
    hwloc_topology_destroy(t);
    if (rc < 0) {
        set_err(err, errlen, "%s: out of memory", topo->source);
        goto err_free;
    }
    if (!xml_path)
        probe_live(topo);
    *out = topo;
    return 0;

err_free:
    corral_topology_free(topo);
    return rc;
}

void corral_topology_free(struct corral_topology *topo)
{
    if (!topo)
        return;
    clear_links(topo);
    free(topo->gpus);
    free(topo->numa_nodes);
    free(topo);
}

const struct corral_gpu *corral_topology_gpu_by_uuid(const struct corral_topology *topo,
                                                     const char *uuid)
{
    for (size_t i = 0; uuid && i < topo->ngpus; i++)
        if (topo->gpus[i].uuid[0] && strcmp(topo->gpus[i].uuid, uuid) == 0)
            return &topo->gpus[i];
    return NULL;
}

unsigned corral_topology_islands(const struct corral_topology *topo)
{
    int max = -1;
    for (size_t i = 0; i < topo->ngpus; i++)
        if (topo->gpus[i].island > max)
            max = topo->gpus[i].island;
    return (unsigned)(max + 1);
}
