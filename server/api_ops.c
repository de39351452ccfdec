/* api_ops.c -- docs/operations.md §2 health, readiness, metrics; and the admin page's
 * static files from --web, served with a strict Content-Security-Policy so
 * nothing the page shows can run as script. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "listen.h"
#include "metrics.h"

enum http_rc api_healthz(struct vx_req *r)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    return http_reply(r, 200, "application/json", ok, sizeof(ok) - 1);
}

enum http_rc api_readyz(struct vx_req *r)
{
    struct vx_snapshot *s = r->snap;
    const char *db = listen_db_up() ? "up" : "down";

    if (s == NULL)
        return http_reply_json(
            r, 503, json_pack("{s:s, s:s, s:n}", "status", "starting", "database", db, "version"));
    return http_reply_json(r, 200,
                           json_pack("{s:s, s:s, s:I}", "status", "ready", "database", db,
                                     "version", (json_int_t)s->version));
}

enum http_rc api_metrics(struct vx_req *r)
{
    size_t len;
    char *text = metrics_render(&len);

    if (text == NULL)
        return HTTP_CLOSE;
    return http_reply_owned(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

enum http_rc api_root(struct vx_req *r)
{
    http_add_header(r, "Location", "/admin/");
    return http_reply_empty(r, 302);
}

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
    };
    const char *dot = strrchr(name, '.');

    for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static bool safe_name(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

enum http_rc api_static(struct vx_req *r)
{
    const char *name = http_arg(r, 0);
    char path[4096];
    struct stat st;
    int fd;

    if (strcmp(r->url, "/admin") == 0) {
        http_add_header(r, "Location", "/admin/");
        return http_reply_empty(r, 301);
    }
    if (name == NULL)
        name = "index.html";
    if (vx_cfg.web_dir == NULL || !safe_name(name) || strstr(name, "..") != NULL)
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "no such file");
    snprintf(path, sizeof(path), "%s/%s", vx_cfg.web_dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "no such file");
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "no such file");
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (resp == NULL) {
        close(fd);
        return HTTP_CLOSE;
    }
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                            "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                            "base-uri 'none'; form-action 'self'");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    return http_queue(r, 200, resp, content_type(name));
}
