-- llmfleet (Managed by llmfleet.cluster.load_balancer): token budgets per API key, one file for both
-- load balancers - HAProxy loads it (lua-load, Lua 5.3) and registers the action at the end; nginx
-- requires it (libnginx-mod-http-lua, LuaJIT) and calls nginx_access() from the upstream location.
--
-- How tokens are counted: reserved at admission, never settled afterwards. A request reserves its prompt
-- (body bytes / 4, rounded up: the usual bytes per token for English text, and the JSON around the
-- messages is counted too) plus its completion limit (the largest max_tokens, max_completion_tokens or
-- n_predict anywhere in the body; none, null or negative: the default the configuration passes in).
-- Why not settle from the response's usage: a streamed answer reports usage only in its last event,
-- when the client asks for it, so the load balancer would have to parse every stream; HAProxy cannot
-- act on a response body without buffering it. A reservation is an upper bound that is known before a
-- replica is busy: a key never gets more than its budget. The largest of every match is taken so that
-- a body that names a limit twice (JSON parsers keep the last) is charged its largest limit.
--
-- The budget is a token bucket (GCRA): it holds a minute's tokens and refills at budget/60 per second,
-- kept as one number per key, the time at which the bucket would be full again. Over budget: 429 with
-- Retry-After, the seconds until this request fits if nothing else comes in (a refused request takes
-- nothing). The key's state is named with its budget, so that a changed budget starts a full bucket.

local M = {}

M.WINDOW = 60
M.BYTES_PER_TOKEN = 4
local LIMIT_FIELDS = {"max_tokens", "max_completion_tokens", "n_predict"}

-- Tokens a request body reserves.
function M.cost(body, default_completion)
  local completion
  for _, field in ipairs(LIMIT_FIELDS) do
    for text in string.gmatch(body, '"' .. field .. '"%s*:%s*([^,}%]%s]+)') do
      local n = tonumber(text)
      if n == nil or n ~= n or n < 0 then
        n = default_completion -- null, a string, -1 ("no limit" to llama.cpp)
      end
      n = math.ceil(n)
      if completion == nil or n > completion then
        completion = n
      end
    end
  end
  return math.ceil(#body / M.BYTES_PER_TOKEN) + (completion or default_completion)
end

-- Admits a request of `cost` tokens for `client` with `budget` tokens per minute at time `now` (s).
-- store: locked(key, fn) runs fn alone for that key; get(key) -> number or nil; set(key, value, ttl).
-- Returns "ok", or "over" and the seconds to wait, or "too_large" (more than the whole budget).
function M.admit(store, client, cost, budget, now)
  if cost > budget then
    return "too_large"
  end
  local key = client .. "|" .. budget
  return store:locked(key, function()
    -- When the bucket is full again; in the past: it is full.
    local full_at = math.max(store:get(key) or now, now)
    local after = full_at + cost * M.WINDOW / budget
    local over = after - now - M.WINDOW
    if over > 0 then
      return "over", math.max(1, math.ceil(over))
    end
    -- Forgotten once full again: nothing left to remember.
    store:set(key, after, math.max(1, after - now))
    return "ok"
  end)
end

function M.error_body(verdict, cost, budget)
  if verdict == "too_large" then
    return string.format('{"error":{"message":"this request reserves %.0f tokens, more than this API key may use '
      .. 'in a minute (%.0f): lower max_tokens or the prompt","type":"rate_limit_error",'
      .. '"code":"request_over_token_budget"}}', cost, budget)
  end
  return string.format('{"error":{"message":"token budget exceeded: this request reserves %.0f tokens, this API '
    .. 'key may use %.0f per minute","type":"rate_limit_error","code":"token_budget_exceeded"}}', cost, budget)
end

-- A store in this Lua state: HAProxy runs one state for all its threads (lua-load) and an action
-- runs to its end without yielding, so nothing interleaves; one number per key with a budget.
function M.table_store()
  local data = {}
  return {
    locked = function(_, _, fn) return fn() end,
    get = function(_, key) return data[key] end,
    set = function(_, key, value) data[key] = value end,
  }
end

-- nginx: a shared dictionary, the same for every worker. A read-modify-write holds a lock (an entry
-- added only if absent, expiring after 100 ms should its worker die), taken in turns of 1 ms.
function M.shared_dict_store(dict, sleep)
  return {
    locked = function(_, key, fn)
      local lock = "lock|" .. key
      for _ = 1, 200 do
        if dict:add(lock, true, 0.1) then
          local ok, verdict, wait = pcall(fn)
          dict:delete(lock)
          if not ok then
            error(verdict)
          end
          return verdict, wait
        end
        sleep(0.001)
      end
      error("token budget: the lock of " .. key .. " stayed taken")
    end,
    get = function(_, key) return dict:get(key) end,
    set = function(_, key, value, ttl)
      local ok, err = dict:set(key, value, ttl)
      if not ok then
        error("token budget store: " .. tostring(err))
      end
    end,
  }
end

-- nginx: access phase of the location that proxies to the model's upstream (the model is known and
-- allowed by then). $llmfleet_token_budget: the key's tokens per minute ("" for none).
function M.nginx_access(default_completion)
  local ngx = ngx
  local budget = tonumber(ngx.var.llmfleet_token_budget)
  if not budget or ngx.req.get_method() ~= "POST" then
    return
  end
  ngx.req.read_body() -- already read by the router: returns at once
  local cost = M.cost(ngx.req.get_body_data() or "", default_completion)
  M.nginx_store = M.nginx_store or M.shared_dict_store(ngx.shared.llmfleet_tokens, ngx.sleep)
  local verdict, wait = M.admit(M.nginx_store, ngx.var.llmfleet_api_client, cost, budget, ngx.now())
  ngx.var.llmfleet_tokens = cost
  if verdict == "ok" then
    return
  end
  ngx.status = 429
  ngx.header["Content-Type"] = "application/json"
  ngx.header["X-Request-ID"] = ngx.var.request_id
  if wait then
    ngx.header["Retry-After"] = wait
  end
  ngx.print(M.error_body(verdict, cost, budget))
  return ngx.exit(ngx.HTTP_OK)
end

-- HAProxy: http-request lua.llmfleet_token_budget DEFAULT_COMPLETION, with txn.token_budget (the key's
-- tokens per minute) set. Sets txn.token_cost, and txn.token_verdict and txn.token_error when refused
-- (with txn.token_retry_after when waiting helps); the configuration answers 429 from them.
function M.haproxy_action(txn, default_completion)
  local budget = tonumber(txn:get_var("txn.token_budget"))
  if not budget then
    return
  end
  local cost = M.cost(txn.f:req_body() or "", tonumber(default_completion))
  local now = core.now()
  M.haproxy_store = M.haproxy_store or M.table_store()
  local verdict, wait = M.admit(M.haproxy_store, txn:get_var("txn.api_client"), cost, budget,
    now.sec + now.usec / 1e6)
  txn:set_var("txn.token_cost", cost)
  if verdict ~= "ok" then
    txn:set_var("txn.token_verdict", verdict)
    txn:set_var("txn.token_error", M.error_body(verdict, cost, budget))
    if wait then
      txn:set_var("txn.token_retry_after", wait)
    end
  end
end

local haproxy = rawget(_G, "core")
if type(haproxy) == "table" and haproxy.register_action then
  haproxy.register_action("llmfleet_token_budget", {"http-req"}, M.haproxy_action, 1)
end

return M
