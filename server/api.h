/* api.h -- the endpoint handlers, one group per file, listed in http.c's
 * routing table. */
#ifndef VX_API_H
#define VX_API_H

#include "http.h"

/* api_client.c: docs/api.md §2 */
enum http_rc api_client_flags(struct vx_req *r);
enum http_rc api_client_flag(struct vx_req *r);

/* api_flags.c: docs/api.md §3 flags, history, revert, stale */
enum http_rc api_flags_list(struct vx_req *r);
enum http_rc api_flags_create(struct vx_req *r);
enum http_rc api_flags_get(struct vx_req *r);
enum http_rc api_flags_patch(struct vx_req *r);
enum http_rc api_flags_delete(struct vx_req *r);
enum http_rc api_flags_history(struct vx_req *r);
enum http_rc api_flags_revert(struct vx_req *r);
enum http_rc api_stale(struct vx_req *r);

/* api_envs.c: docs/api.md §6 environments */
enum http_rc api_envs_list(struct vx_req *r);
enum http_rc api_envs_create(struct vx_req *r);
enum http_rc api_envs_patch(struct vx_req *r);
enum http_rc api_envs_delete(struct vx_req *r);

/* api_segments.c: docs/api.md §7 segments */
enum http_rc api_segments_list(struct vx_req *r);
enum http_rc api_segments_create(struct vx_req *r);
enum http_rc api_segments_get(struct vx_req *r);
enum http_rc api_segments_patch(struct vx_req *r);
enum http_rc api_segments_delete(struct vx_req *r);
enum http_rc api_segments_history(struct vx_req *r);

/* api_plans.c: docs/api.md §8 release plans and alerts */
enum http_rc api_plan_put(struct vx_req *r);
enum http_rc api_plan_get(struct vx_req *r);
enum http_rc api_plan_pause(struct vx_req *r);
enum http_rc api_plan_resume(struct vx_req *r);
enum http_rc api_plan_abort(struct vx_req *r);
enum http_rc api_plan_advance(struct vx_req *r);
enum http_rc api_plans_list(struct vx_req *r);
enum http_rc api_alerts(struct vx_req *r);

/* api_webhooks.c: docs/api.md §9 webhooks */
enum http_rc api_webhooks_list(struct vx_req *r);
enum http_rc api_webhooks_create(struct vx_req *r);
enum http_rc api_webhooks_delete(struct vx_req *r);
enum http_rc api_webhooks_deliveries(struct vx_req *r);

/* api_tokens.c: docs/api.md §3 tokens */
enum http_rc api_tokens_list(struct vx_req *r);
enum http_rc api_tokens_create(struct vx_req *r);
enum http_rc api_tokens_delete(struct vx_req *r);

/* api_ops.c: docs/operations.md §2 and the admin page's files */
enum http_rc api_healthz(struct vx_req *r);
enum http_rc api_readyz(struct vx_req *r);
enum http_rc api_metrics(struct vx_req *r);
enum http_rc api_static(struct vx_req *r);
enum http_rc api_root(struct vx_req *r);

/* api_unleash.c: docs/unleash.md */
enum http_rc unleash_features_get(struct vx_req *r);
enum http_rc unleash_streaming(struct vx_req *r);
enum http_rc unleash_register(struct vx_req *r);
enum http_rc unleash_metrics(struct vx_req *r);
enum http_rc unleash_frontend(struct vx_req *r);

/* ofrep.c: docs/ofrep.md */
enum http_rc ofrep_eval_one(struct vx_req *r);
enum http_rc ofrep_eval_bulk(struct vx_req *r);
enum http_rc ofrep_stream(struct vx_req *r);

#endif
