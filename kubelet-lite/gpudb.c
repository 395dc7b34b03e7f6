/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gpudb: the GPU model table (see gpudb.h).
 *
 * Device ids follow pci.ids; product names are the strings current NVIDIA drivers report
 * through NVML/CUDA (what GPU Feature Discovery turns into nvidia.com/gpu.product); memory is
 * what nvidia-smi reports as total, used only when neither CUDA nor OpenCL told hwloc the size.
 * RT cores: every Turing TU10x, Ampere GA10x, Ada AD10x and Blackwell GB20x part has them; the
 * compute-only dies (GP100, GV100, GA100, GH100, GB100) and everything older do not.
 * The table is sorted by device id (a test checks it) and searched by bisection.
 */
#include "gpudb.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DT "datacenter-training"
#define DI "datacenter-inference"
#define WS "workstation"
#define CO "consumer"

static const struct corral_gpudb_entry table[] = {
    /* sorted by device id; the family is in each row */
    {0x1023, "K40m", "Tesla K40m", "kepler", 3, 5, false, DT, 11441},
    {0x1024, "K40c", "Tesla K40c", "kepler", 3, 5, false, DT, 11441},
    {0x102d, "K80", "Tesla K80", "kepler", 3, 7, false, DT, 11441},
    {0x1094, "M2075", "Tesla M2075", "fermi", 2, 0, false, DT, 5375},
    {0x15f7, "P100-PCIE-12GB", "Tesla P100-PCIE-12GB", "pascal", 6, 0, false, DT, 12198},
    {0x15f8, "P100-PCIE-16GB", "Tesla P100-PCIE-16GB", "pascal", 6, 0, false, DT, 16280},
    {0x15f9, "P100-SXM2-16GB", "Tesla P100-SXM2-16GB", "pascal", 6, 0, false, DT, 16280},
    {0x1b06, "GTX-1080-Ti", "NVIDIA GeForce GTX 1080 Ti", "pascal", 6, 1, false, CO, 11264},
    {0x1b38, "P40", "Tesla P40", "pascal", 6, 1, false, DI, 24576},
    {0x1b80, "GTX-1080", "NVIDIA GeForce GTX 1080", "pascal", 6, 1, false, CO, 8192},
    {0x1b81, "GTX-1070", "NVIDIA GeForce GTX 1070", "pascal", 6, 1, false, CO, 8192},
    {0x1bb3, "P4", "Tesla P4", "pascal", 6, 1, false, DI, 7680},
    {0x1db1, "V100-SXM2-16GB", "Tesla V100-SXM2-16GB", "volta", 7, 0, false, DT, 16160},
    {0x1db4, "V100-PCIE-16GB", "Tesla V100-PCIE-16GB", "volta", 7, 0, false, DT, 16160},
    {0x1db5, "V100-SXM2-32GB", "Tesla V100-SXM2-32GB", "volta", 7, 0, false, DT, 32510},
    {0x1db6, "V100-PCIE-32GB", "Tesla V100-PCIE-32GB", "volta", 7, 0, false, DT, 32510},
    {0x1db8, "V100-SXM3-32GB", "Tesla V100-SXM3-32GB", "volta", 7, 0, false, DT, 32510},
    {0x1df6, "V100S-PCIE-32GB", "Tesla V100S-PCIE-32GB", "volta", 7, 0, false, DT, 32510},
    {0x1e04, "RTX-2080-Ti", "NVIDIA GeForce RTX 2080 Ti", "turing", 7, 5, true, CO, 11264},
    {0x1e07, "RTX-2080-Ti", "NVIDIA GeForce RTX 2080 Ti", "turing", 7, 5, true, CO, 11264},
    {0x1e30, "Quadro-RTX-6000", "Quadro RTX 6000", "turing", 7, 5, true, WS, 24576},
    {0x1e82, "RTX-2080", "NVIDIA GeForce RTX 2080", "turing", 7, 5, true, CO, 8192},
    {0x1e87, "RTX-2080", "NVIDIA GeForce RTX 2080", "turing", 7, 5, true, CO, 8192},
    {0x1eb8, "T4", "Tesla T4", "turing", 7, 5, true, DI, 15360},
    {0x20b0, "A100-SXM4-40GB", "NVIDIA A100-SXM4-40GB", "ampere", 8, 0, false, DT, 40960},
    {0x20b2, "A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB", "ampere", 8, 0, false, DT, 81920},
    {0x20b5, "A100-PCIE-80GB", "NVIDIA A100 80GB PCIe", "ampere", 8, 0, false, DT, 81920},
    {0x20b7, "A30", "NVIDIA A30", "ampere", 8, 0, false, DI, 24576},
    {0x20f1, "A100-PCIE-40GB", "NVIDIA A100-PCIE-40GB", "ampere", 8, 0, false, DT, 40960},
    {0x2203, "RTX-3090-Ti", "NVIDIA GeForce RTX 3090 Ti", "ampere", 8, 6, true, CO, 24564},
    {0x2204, "RTX-3090", "NVIDIA GeForce RTX 3090", "ampere", 8, 6, true, CO, 24576},
    {0x2206, "RTX-3080", "NVIDIA GeForce RTX 3080", "ampere", 8, 6, true, CO, 10240},
    {0x2208, "RTX-3080-Ti", "NVIDIA GeForce RTX 3080 Ti", "ampere", 8, 6, true, CO, 12288},
    {0x2216, "RTX-3080", "NVIDIA GeForce RTX 3080", "ampere", 8, 6, true, CO, 10240},
    {0x2230, "RTX-A6000", "NVIDIA RTX A6000", "ampere", 8, 6, true, WS, 49140},
    {0x2231, "RTX-A5000", "NVIDIA RTX A5000", "ampere", 8, 6, true, WS, 24564},
    {0x2235, "A40", "NVIDIA A40", "ampere", 8, 6, true, DI, 46068},
    {0x2236, "A10", "NVIDIA A10", "ampere", 8, 6, true, DI, 23028},
    {0x2321, "H100-NVL-94GB", "NVIDIA H100 NVL", "hopper", 9, 0, false, DT, 95830},
    {0x2330, "H100-SXM5-80GB", "NVIDIA H100 80GB HBM3", "hopper", 9, 0, false, DT, 81559},
    {0x2331, "H100-PCIE-80GB", "NVIDIA H100 PCIe", "hopper", 9, 0, false, DT, 81559},
    {0x2335, "H200-SXM-141GB", "NVIDIA H200", "hopper", 9, 0, false, DT, 143771},
    {0x233b, "H200-NVL-141GB", "NVIDIA H200 NVL", "hopper", 9, 0, false, DT, 143771},
    {0x2482, "RTX-3070-Ti", "NVIDIA GeForce RTX 3070 Ti", "ampere", 8, 6, true, CO, 8192},
    {0x2484, "RTX-3070", "NVIDIA GeForce RTX 3070", "ampere", 8, 6, true, CO, 8192},
    {0x2488, "RTX-3070", "NVIDIA GeForce RTX 3070", "ampere", 8, 6, true, CO, 8192},
    {0x24b0, "RTX-A4000", "NVIDIA RTX A4000", "ampere", 8, 6, true, WS, 16376},
    {0x2684, "RTX-4090", "NVIDIA GeForce RTX 4090", "ada-lovelace", 8, 9, true, CO, 24564},
    {0x26b1, "RTX-6000-Ada", "NVIDIA RTX 6000 Ada Generation", "ada-lovelace", 8, 9, true, WS,
     49140},
    {0x26b5, "L40", "NVIDIA L40", "ada-lovelace", 8, 9, true, DI, 46068},
    {0x26b9, "L40S", "NVIDIA L40S", "ada-lovelace", 8, 9, true, DI, 46068},
    {0x2702, "RTX-4080-SUPER", "NVIDIA GeForce RTX 4080 SUPER", "ada-lovelace", 8, 9, true, CO,
     16376},
    {0x2704, "RTX-4080", "NVIDIA GeForce RTX 4080", "ada-lovelace", 8, 9, true, CO, 16376},
    {0x2782, "RTX-4070-Ti", "NVIDIA GeForce RTX 4070 Ti", "ada-lovelace", 8, 9, true, CO, 12282},
    {0x2786, "RTX-4070", "NVIDIA GeForce RTX 4070", "ada-lovelace", 8, 9, true, CO, 12282},
    {0x27b8, "L4", "NVIDIA L4", "ada-lovelace", 8, 9, true, DI, 23034},
    {0x2901, "B200", "NVIDIA B200", "blackwell", 10, 0, false, DT, 183359},
    {0x2b85, "RTX-5090", "NVIDIA GeForce RTX 5090", "blackwell", 12, 0, true, CO, 32607},
    {0x2bb1, "RTX-PRO-6000", "NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "blackwell", 12,
     0, true, WS, 97887},
    {0x2c02, "RTX-5080", "NVIDIA GeForce RTX 5080", "blackwell", 12, 0, true, CO, 16303},
};

#define TABLE_LEN (sizeof(table) / sizeof(table[0]))

const struct corral_gpudb_entry *corral_gpudb_lookup(uint16_t device_id)
{
    size_t lo = 0, hi = TABLE_LEN;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (table[mid].device_id == device_id)
            return &table[mid];
        if (table[mid].device_id < device_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Skips the vendor and brand words that drivers add or drop between releases. */
static const char *strip_brand(const char *s)
{
    static const char *const prefixes[] = {"NVIDIA ", "GeForce ", "Tesla "};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t n = strlen(prefixes[i]);
        if (strncasecmp(s, prefixes[i], n) == 0)
            s += n;
    }
    return s;
}

const struct corral_gpudb_entry *corral_gpudb_lookup_name(const char *name)
{
    if (!name || !*name)
        return NULL;
    const char *want = strip_brand(name);
    for (size_t i = 0; i < TABLE_LEN; i++)
        if (strcasecmp(strip_brand(table[i].product), want) == 0)
            return &table[i];
    return NULL;
}

size_t corral_gpudb_count(void)
{
    return TABLE_LEN;
}

const struct corral_gpudb_entry *corral_gpudb_at(size_t i)
{
    return i < TABLE_LEN ? &table[i] : NULL;
}

bool corral_gpudb_valid_class(const char *gpu_class)
{
    return gpu_class && (strcmp(gpu_class, DT) == 0 || strcmp(gpu_class, DI) == 0 ||
                         strcmp(gpu_class, WS) == 0 || strcmp(gpu_class, CO) == 0);
}

static bool label_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

size_t corral_gpudb_product_label(const char *name, char *out, size_t len)
{
    size_t n = 0;
    bool pending_dash = false;
    size_t max = len - 1 < 63 ? len - 1 : 63;
    for (const char *p = name ? name : ""; *p && n < max; p++) {
        if (!label_char(*p) || (n == 0 && !isalnum((unsigned char)*p))) {
            pending_dash = n > 0;
            continue;
        }
        if (pending_dash) {
            if (n + 1 >= max)
                break; /* no room for the dash and a character after it */
            out[n++] = '-';
        }
        pending_dash = false;
        out[n++] = *p;
    }
    while (n > 0 && !isalnum((unsigned char)out[n - 1]))
        n--;
    out[n] = '\0';
    return n;
}
