/* SPDX-License-Identifier: Apache-2.0 */
/* A shared object that is not a plugin (no corral_plugin_entry): refused. */
__attribute__((visibility("default"))) int not_a_plugin(void);

int not_a_plugin(void)
{
    return 42;
}
