/* routes.c -- the routing table: every endpoint vexil serves, in one place.
 *
 * Each line names a method and a path pattern ("*" is one argument
 * segment, http_arg(r, 0)), the handler that answers it (api_*.c,
 * ofrep.c) and its flags: the role its token needs, whether it reads a JSON
 * body, whether it answers CORS, and whether it needs the snapshot.  The
 * handler field has the handler's own type, so an entry whose function has
 * the wrong signature does not compile.  http.c routes each request through
 * this table (404, 405 with Allow), checks the flags, then calls the
 * handler; metrics label requests by each entry's pattern.
 *
 * The reference of every endpoint is docs/api.md (§2 client, §3 admin, §8 plans),
 * docs/unleash.md,
 * docs/ofrep.md and docs/operations.md §2. */
#include "api.h"

#define ROUTE(method, pattern, handler, flags)                                                     \
    {                                                                                              \
        {method, pattern, pattern}, handler, flags                                                 \
    }

const struct http_route http_routes[] = {
    /* client API: docs/api.md §2 */
    /* GET /flags without ?user= is refused to a frontend token (api_client.c) */
    ROUTE("GET", "/flags", api_client_flags, ROUTE_EVAL | ROUTE_CORS),
    ROUTE("GET", "/flags/*", api_client_flag, ROUTE_EVAL | ROUTE_CORS),
    /* admin API: docs/api.md §3 */
    ROUTE("GET", "/api/flags", api_flags_list, ROUTE_ADMIN),
    ROUTE("POST", "/api/flags", api_flags_create, ROUTE_ADMIN | ROUTE_BODY),
    ROUTE("GET", "/api/flags/*", api_flags_get, ROUTE_ADMIN),
    ROUTE("PATCH", "/api/flags/*", api_flags_patch, ROUTE_ADMIN | ROUTE_BODY),
    ROUTE("DELETE", "/api/flags/*", api_flags_delete, ROUTE_ADMIN),
    ROUTE("GET", "/api/flags/*/history", api_flags_history, ROUTE_ADMIN),
    ROUTE("POST", "/api/flags/*/revert", api_flags_revert, ROUTE_ADMIN | ROUTE_BODY),
    ROUTE("GET", "/api/stale", api_stale, ROUTE_ADMIN),
    /* release plans and alerts: docs/api.md §8 */
    ROUTE("PUT", "/api/flags/*/plan", api_plan_put, ROUTE_ADMIN | ROUTE_BODY),
    ROUTE("GET", "/api/flags/*/plan", api_plan_get, ROUTE_ADMIN),
    ROUTE("POST", "/api/flags/*/plan/pause", api_plan_pause, ROUTE_ADMIN),
    ROUTE("POST", "/api/flags/*/plan/resume", api_plan_resume, ROUTE_ADMIN),
    ROUTE("POST", "/api/flags/*/plan/abort", api_plan_abort, ROUTE_ADMIN),
    ROUTE("POST", "/api/flags/*/plan/advance", api_plan_advance, ROUTE_ADMIN),
    ROUTE("GET", "/api/plans", api_plans_list, ROUTE_ADMIN),
    ROUTE("POST", "/api/alerts", api_alerts, ROUTE_ADMIN | ROUTE_BODY),
    /* webhooks: docs/api.md §9 */
    ROUTE("GET", "/api/webhooks", api_webhooks_list, ROUTE_ADMIN),
    ROUTE("POST", "/api/webhooks", api_webhooks_create, ROUTE_ADMIN | ROUTE_BODY),
    ROUTE("DELETE", "/api/webhooks/*", api_webhooks_delete, ROUTE_ADMIN),
    ROUTE("GET", "/api/webhooks/*/deliveries", api_webhooks_deliveries, ROUTE_ADMIN),
    ROUTE("GET", "/api/environments", api_envs_list, ROUTE_ADMIN),
    ROUTE("POST", "/api/environments", api_envs_create, ROUTE_ADMIN | ROUTE_BODY),
    ROUTE("PATCH", "/api/environments/*", api_envs_patch, ROUTE_ADMIN | ROUTE_BODY),
    ROUTE("DELETE", "/api/environments/*", api_envs_delete, ROUTE_ADMIN),
    ROUTE("GET", "/api/segments", api_segments_list, ROUTE_ADMIN),
    ROUTE("POST", "/api/segments", api_segments_create, ROUTE_ADMIN | ROUTE_BODY),
    ROUTE("GET", "/api/segments/*", api_segments_get, ROUTE_ADMIN),
    ROUTE("PATCH", "/api/segments/*", api_segments_patch, ROUTE_ADMIN | ROUTE_BODY),
    ROUTE("DELETE", "/api/segments/*", api_segments_delete, ROUTE_ADMIN),
    ROUTE("GET", "/api/segments/*/history", api_segments_history, ROUTE_ADMIN),
    ROUTE("GET", "/api/tokens", api_tokens_list, ROUTE_ADMIN),
    ROUTE("POST", "/api/tokens", api_tokens_create, ROUTE_ADMIN | ROUTE_BODY),
    ROUTE("DELETE", "/api/tokens/*", api_tokens_delete, ROUTE_ADMIN),
    /* OpenFeature remote evaluation: docs/ofrep.md */
    ROUTE("POST", "/ofrep/v1/evaluate/flags", ofrep_eval_bulk,
          ROUTE_EVAL | ROUTE_BODY | ROUTE_CORS | ROUTE_BODYLESS_401),
    ROUTE("POST", "/ofrep/v1/evaluate/flags/*", ofrep_eval_one,
          ROUTE_EVAL | ROUTE_BODY | ROUTE_CORS | ROUTE_BODYLESS_401),
    /* its token comes as a header or as the stream key (ofrep.c) */
    ROUTE("GET", "/ofrep/v1/events", ofrep_stream, ROUTE_PUBLIC | ROUTE_CORS | ROUTE_SNAPSHOT),
    /* Unleash SDKs: docs/unleash.md (they send the token without "Bearer") */
    ROUTE("GET", "/api/client/features", unleash_features_get, ROUTE_CLIENT | ROUTE_BARE_TOKEN),
    ROUTE("GET", "/api/client/streaming", unleash_streaming, ROUTE_CLIENT | ROUTE_BARE_TOKEN),
    ROUTE("POST", "/api/client/register", unleash_register,
          ROUTE_CLIENT | ROUTE_BARE_TOKEN | ROUTE_BODY),
    ROUTE("POST", "/api/client/metrics", unleash_metrics,
          ROUTE_CLIENT | ROUTE_BARE_TOKEN | ROUTE_BODY),
    ROUTE("GET", "/api/frontend", unleash_frontend, ROUTE_EVAL | ROUTE_BARE_TOKEN | ROUTE_CORS),
    ROUTE("POST", "/api/frontend", unleash_frontend,
          ROUTE_EVAL | ROUTE_BARE_TOKEN | ROUTE_CORS | ROUTE_BODY),
    ROUTE("POST", "/api/frontend/client/metrics", unleash_metrics,
          ROUTE_EVAL | ROUTE_BARE_TOKEN | ROUTE_CORS | ROUTE_BODY),
    ROUTE("POST", "/api/frontend/client/register", unleash_register,
          ROUTE_EVAL | ROUTE_BARE_TOKEN | ROUTE_CORS | ROUTE_BODY),
    /* operations and the admin page: docs/operations.md §2 */
    ROUTE("GET", "/healthz", api_healthz, ROUTE_PUBLIC),
    ROUTE("GET", "/readyz", api_readyz, ROUTE_PUBLIC),
    ROUTE("GET", "/metrics", api_metrics, ROUTE_PUBLIC),
    ROUTE("GET", "/", api_root, ROUTE_PUBLIC),
    ROUTE("GET", "/admin", api_static, ROUTE_PUBLIC),
    ROUTE("GET", "/admin/", api_static, ROUTE_PUBLIC),
    ROUTE("GET", "/admin/*", api_static, ROUTE_PUBLIC),
};

const size_t http_n_routes = sizeof(http_routes) / sizeof(http_routes[0]);
