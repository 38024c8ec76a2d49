/* srv_static_data.c - the playground page's files (server/web/) compiled
 * into the binary at build time (see srv_static.h).
 *
 * The assembler's .incbin copies each file's bytes into .rodata, followed
 * by a NUL that is not counted in len: nothing is generated, nothing is
 * committed twice, and the Makefile makes this object depend on
 * server/web/, so an edit there rebuilds it. The paths are relative to the
 * repository root, where make runs. Adding a file to server/web/ means one
 * EMBED line and one table row here (tests/test_static checks that every
 * served file of server/web/ is embedded, byte for byte).
 *
 * Lengths and ETags are computed once, on first use (pthread_once): a
 * 64-bit FNV-1a hash of the content as 16 hex digits, so the ETag changes
 * with the page and stays the same across builds of the same files. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "srv_static.h"

#define EMBED(sym, path)                                                                                     \
    __asm__(".pushsection .rodata\n"                                                                         \
            ".balign 16\n"                                                                                   \
            ".globl " #sym "\n.hidden " #sym "\n" #sym ":\n"                                                 \
            ".incbin \"" path "\"\n"                                                                         \
            ".globl " #sym "_end\n.hidden " #sym "_end\n" #sym "_end:\n"                                     \
            ".byte 0\n"                                                                                      \
            ".popsection\n");                                                                                \
    extern const unsigned char sym[], sym##_end[]

EMBED(srv_web_index_html, "server/web/index.html");
EMBED(srv_web_app_js, "server/web/app.js");
EMBED(srv_web_style_css, "server/web/style.css");
EMBED(srv_web_favicon_svg, "server/web/favicon.svg");

#define N_FILES 4

static const unsigned char *const file_end[N_FILES] = {srv_web_index_html_end, srv_web_app_js_end,
                                                       srv_web_style_css_end, srv_web_favicon_svg_end};
static srv_static_file files[N_FILES] = {
    {"/", "text/html; charset=utf-8", srv_web_index_html, 0, NULL},
    {"/app.js", "text/javascript; charset=utf-8", srv_web_app_js, 0, NULL},
    {"/style.css", "text/css; charset=utf-8", srv_web_style_css, 0, NULL},
    {"/favicon.svg", "image/svg+xml", srv_web_favicon_svg, 0, NULL},
};
static char etags[N_FILES][19];   /* "\"" 16 hex digits "\"" NUL */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_files(void)
{
    for (int i = 0; i < N_FILES; i++) {
        files[i].len = (size_t)(file_end[i] - files[i].data);
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t k = 0; k < files[i].len; k++) h = (h ^ files[i].data[k]) * 0x100000001b3ull;
        snprintf(etags[i], sizeof etags[i], "\"%016llx\"", (unsigned long long)h);
        files[i].etag = etags[i];
    }
}

int srv_static_count(void)
{
    return N_FILES;
}

const srv_static_file *srv_static_file_at(int i)
{
    if (i < 0 || i >= N_FILES) return NULL;
    pthread_once(&once, init_files);
    return &files[i];
}
