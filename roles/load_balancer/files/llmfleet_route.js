// llmfleet (Managed by llmfleet.cluster.load_balancer): routes an OpenAI-style request to the
// upstream of the model its JSON body names, for nginx's njs module (Debian: libnginx-mod-http-js).
// The routes themselves are in nginx.conf, where `nginx -t` checks them: map $llmfleet_model ->
// $llmfleet_backend (every name and alias), $llmfleet_default_backend (the only model, or "" when
// there are several), $llmfleet_scope (the upstreams an API key limited to some models may use, as
// "|NAME|NAME|"; "" for every one), $llmfleet_models (GET /v1/models, for this key) and the affinity settings
// ($llmfleet_affinity_mode: none, session or prefix; $llmfleet_affinity_header); the key it sets,
// $llmfleet_affinity, is what the upstreams hash.

function fail(r, status, message, code, type) {
    r.headersOut['Content-Type'] = 'application/json';
    r.return(status, JSON.stringify({error: {message: message, type: type || 'invalid_request_error', code: code}}));
}

function route(r) {
    if (r.method === 'GET' && r.uri === '/v1/models') {
        r.headersOut['Content-Type'] = 'application/json';
        r.return(200, r.variables.llmfleet_models);
        return;
    }
    var model = null;
    var first = '';
    if (r.method === 'POST') {
        var text;
        try {
            // In memory: client_body_buffer_size is client_max_body_size (nginx.conf).
            text = r.requestText;
        } catch (e) {
            text = undefined;
        }
        if (text === undefined) {
            fail(r, 413, 'request body larger than the load balancer reads to route it by model', 'request_too_large');
            return;
        }
        try {
            var body = JSON.parse(text);
            if (body && typeof body.model === 'string') {
                model = body.model;
            }
            if (body && Array.isArray(body.messages) && body.messages.length && body.messages[0]) {
                var content = body.messages[0].content;
                first = typeof content === 'string' ? content : JSON.stringify(content || '');
            }
        } catch (e) {
            model = null;  // not JSON: no model named, as for HAProxy
        }
    }
    var backend = r.variables.llmfleet_default_backend;
    if (model !== null) {
        r.variables.llmfleet_model = model;
        backend = r.variables.llmfleet_backend;
        if (!backend) {
            fail(r, 404, 'no such model: GET /v1/models lists the models served here', 'model_not_found');
            return;
        }
    } else if (r.method === 'POST' && !backend) {
        fail(r, 400, 'model is required: several models are served here (GET /v1/models)', 'model_required');
        return;
    } else if (!backend) {
        backend = r.variables.llmfleet_first_backend;
    }
    var scope = r.variables.llmfleet_scope;
    if (scope && scope.indexOf('|' + backend + '|') < 0) {
        fail(r, 403, 'this API key may not use this model', 'model_not_allowed', 'permission_error');
        return;
    }
    var mode = r.variables.llmfleet_affinity_mode;
    if (mode === 'session') {
        r.variables.llmfleet_affinity = r.headersIn[r.variables.llmfleet_affinity_header] || '';
    } else if (mode === 'prefix') {
        r.variables.llmfleet_affinity = first;
    }
    r.variables.llmfleet_upstream = backend;
    r.internalRedirect('@llmfleet_upstream');
}

export default {route};
