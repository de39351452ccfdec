/* ofrep.c -- SPEC §12, the OpenFeature Remote Evaluation Protocol.
 * (Being built; until then the endpoints answer 501.) */
#include "api.h"

void ofrep_stream_free(struct vx_req *r);

enum http_rc ofrep_eval_one(struct vx_req *r)
{
    return http_reply_error(r, 501, VX_E_BAD_REQUEST, "OFREP is not available yet");
}

enum http_rc ofrep_eval_bulk(struct vx_req *r)
{
    return http_reply_error(r, 501, VX_E_BAD_REQUEST, "OFREP is not available yet");
}

enum http_rc ofrep_stream(struct vx_req *r)
{
    return http_reply_error(r, 501, VX_E_BAD_REQUEST, "OFREP is not available yet");
}

void ofrep_stream_free(struct vx_req *r)
{
    (void)r;
}
