/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rss_floor: the memory any process pays for the libraries the node agent is built on, before
 * it does any work of its own. It links what `corral` links, makes the calls every agent makes
 * once (libcurl's global init and one handle, one OpenSSL client context, one libmicrohttpd
 * daemon, which initialises GnuTLS) and prints its VmRSS in kB on one line. bench_kubelet runs
 * it to report how much of the agent's VmRSS is the agent's own.
 */
#include <curl/curl.h>
#include <microhttpd.h>
#include <openssl/ssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum MHD_Result refuse(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **state)
{
    (void)cls, (void)c, (void)url, (void)method, (void)version, (void)data, (void)size;
    (void)state;
    return MHD_NO;
}

int main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    CURL *handle = curl_easy_init();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                                            refuse, NULL, MHD_OPTION_END);
    if (!handle || !ctx || !d)
        return 1;
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atol(line + 6);
    if (f)
        fclose(f);
    printf("%ld\n", kb);
    MHD_stop_daemon(d);
    SSL_CTX_free(ctx);
    curl_easy_cleanup(handle);
    curl_global_cleanup();
    return kb < 0;
}
