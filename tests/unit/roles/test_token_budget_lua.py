"""The load balancers' token budgets (roles/load_balancer/files/llmfleet_budget.lua), run by the real
Lua 5.3 interpreter (HAProxy's; nginx runs the same file under LuaJIT, which the lab tests cover)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "roles" / "load_balancer" / "files" / "llmfleet_budget.lua"
LUA = shutil.which("lua5.3")


def lua(code):
    """Runs `code` with M = the module and emit(...) printing one JSON-ish line per call."""
    assert LUA, "lua5.3 missing: scripts/bootstrap installs it"
    prelude = """
local M = dofile(%s)
local function emit(...)
  local out = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    out[#out + 1] = type(v) == "string" and string.format("%%q", v) or tostring(v)
  end
  print("[" .. table.concat(out, ",") .. "]")
end
""" % json.dumps(str(SCRIPT))
    proc = subprocess.run([LUA, "-"], input=prelude + code, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line.replace("nil", "null")) for line in proc.stdout.splitlines()]


def cost(body, default=100):
    return lua("emit(M.cost(%s, %d))" % (json.dumps(body), default))[0][0]


def test_a_request_reserves_its_prompt_bytes_over_four_plus_its_completion_limit():
    body = json.dumps({"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})
    assert cost(body) == -(-len(body) // 4) + 50


@pytest.mark.parametrize("limit,charged", [
    ('"max_tokens": 7', 7),
    ('"max_completion_tokens":9', 9),
    ('"n_predict" : 12', 12),
    ('"max_tokens": 2.5', 3),
    # no limit the engine would honour: the configured default
    ('"max_tokens": null', 100),
    ('"n_predict": -1', 100),
    ('"max_tokens": "5"', 100),
    ('"stream": true', 100),
])
def test_the_completion_limit(limit, charged):
    body = '{"model":"m",%s}' % limit
    assert cost(body) == -(-len(body) // 4) + charged


def test_a_limit_named_twice_is_charged_at_its_largest():
    # JSON parsers keep the last of two equal keys, HAProxy's json_query the first: either way, the largest.
    for body in ('{"max_tokens":5,"max_tokens":900}', '{"max_tokens":900,"max_tokens":5}',
                 '{"max_tokens":5,"extra":{"max_completion_tokens":900}}'):
        assert cost(body) == -(-len(body) // 4) + 900


def test_an_unbounded_limit_is_more_than_any_budget():
    assert lua('emit(M.admit(M.table_store(), "a", M.cost(\'{"max_tokens":1e999}\', 100), 10^9, 0))')[0] == ["too_large"]


ADMIT_LOOP = """
local store = M.table_store()
local function try(t, c)
  local verdict, wait = M.admit(store, "team-a", c, %(budget)d, t)
  emit(t, verdict, wait)
  return verdict, wait
end
"""


def test_over_the_budget_waits_exactly_as_long_as_retry_after_says():
    # Budget 300 per minute (5 per second), requests of 111: two fit at once, the third must wait for
    # 111 - (300 - 222 + refill) more; after Retry-After it fits, one second earlier it would not.
    for start in (0.0, 10.5, 59.5, 1e9 + 0.25):
        out = lua(ADMIT_LOOP % {"budget": 300} + """
local t = %(start)f
try(t, 111); try(t + 1, 111)
local verdict, wait = try(t + 2, 111)
-- One second early (refused, so it takes nothing), then on time.
if wait > 1 then try(t + 2 + wait - 1, 111) end
try(t + 2 + wait, 111)
""" % {"start": start})
        assert [row[1] for row in out[:3]] == ["ok", "ok", "over"], out
        wait = out[2][2]
        # 111 - (300 - 222 + 2 s * 5) = 23 tokens short: 4.6 s at 5 per second.
        assert wait == 5, out
        assert out[3][1] == "over", (start, out)
        assert out[-1][1] == "ok", (start, out)


def test_the_bucket_refills_to_a_minute_of_tokens_and_no_more():
    out = lua(ADMIT_LOOP % {"budget": 100} + """
try(0, 100)            -- the whole minute at once
try(30, 50); try(30, 1)  -- half a minute later: half of it back
try(10000, 100); try(10000, 1)  -- idle for hours: still one minute's worth, not more
""")
    assert [row[1] for row in out] == ["ok", "ok", "over", "ok", "over"], out


def test_a_refused_request_takes_nothing():
    out = lua(ADMIT_LOOP % {"budget": 100} + """
try(0, 60); try(0, 60); try(0, 60); try(0, 40)
""")
    assert [row[1] for row in out] == ["ok", "over", "over", "ok"]


def test_more_than_a_whole_minute_is_refused_without_a_wait():
    out = lua(ADMIT_LOOP % {"budget": 100} + "try(0, 101)")
    assert out == [[0, "too_large", None]]


def test_keys_and_budgets_have_their_own_buckets():
    # A changed budget (the configuration) starts a full bucket instead of inheriting the old one's time.
    out = lua("""
local store = M.table_store()
emit(M.admit(store, "a", 90, 100, 0)); emit(M.admit(store, "b", 90, 100, 0)); emit(M.admit(store, "a", 90, 100, 1))
emit(M.admit(store, "a", 90, 200, 1))
""")
    assert [row[0] for row in out] == ["ok", "ok", "over", "ok"]


FAKE_DICT = """
local data, ttls, sleeps = {}, {}, 0
local dict = {
  get = function(_, k) return data[k] end,
  set = function(_, k, v, ttl) data[k] = v; ttls[k] = ttl; return true end,
  add = function(_, k, v, ttl) if data[k] ~= nil then return false, "exists" end; data[k] = v; return true end,
  delete = function(_, k) data[k] = nil end,
}
local store = M.shared_dict_store(dict, function() sleeps = sleeps + 1 end)
"""


def test_nginx_state_is_kept_under_a_lock_and_expires_once_the_bucket_is_full():
    # lua-nginx-module's shared dictionary: add() only if absent (the lock), set(key, value, exptime).
    out = lua(FAKE_DICT + """
emit(M.admit(store, "a", 60, 100, 0)); emit(M.admit(store, "a", 60, 100, 1))
emit(data["a|100"], ttls["a|100"], data["lock|a|100"], sleeps)
""")
    assert out[0][0] == "ok" and out[1][0] == "over"
    # full again 36 s from then (60 tokens at 100 per 60 s); the lock released; nobody waited.
    assert out[2] == [36, 36, None, 0]


def test_nginx_waits_for_a_taken_lock_and_gives_up_with_an_error():
    out = lua(FAKE_DICT + """
data["lock|a|100"] = true  -- another worker holds it (and died: it expires, here it never does)
local ok, err = pcall(M.admit, store, "a", 60, 100, 0)
emit(ok, sleeps, tostring(err):match("stayed taken") ~= nil)
""")
    assert out == [[False, 200, True]]


def test_error_bodies_are_openai_style_json():
    out = lua('emit(M.error_body("over", 111, 300)); emit(M.error_body("too_large", 1/0, 300))')
    over, large = json.loads(out[0][0]), json.loads(out[1][0])
    assert over["error"]["code"] == "token_budget_exceeded" and "111" in over["error"]["message"]
    assert large["error"]["code"] == "request_over_token_budget"


def test_the_haproxy_action_sets_what_the_configuration_answers_from():
    # HAProxy's Lua API: core.register_action at load, then txn:get_var/set_var and txn.f:req_body().
    out = lua("""
core = {now = function() return {sec = 600, usec = 0} end,
        register_action = function(name, on, fn, nargs) registered = {name, on[1], nargs} end}
local H = dofile(%s)
emit(registered[1], registered[2], registered[3])
local function txn(vars, body)
  return {vars = vars, f = {req_body = function() return body end},
          get_var = function(self, k) return self.vars[k] end,
          set_var = function(self, k, v) self.vars[k] = v end}
end
local body = '{"max_tokens":40}'
local a = txn({["txn.api_client"] = "team-a", ["txn.token_budget"] = "80"}, body)
H.haproxy_action(a, "7"); emit(a.vars["txn.token_cost"], a.vars["txn.token_verdict"])
local b = txn({["txn.api_client"] = "team-a", ["txn.token_budget"] = "80"}, body)
H.haproxy_action(b, "7"); emit(b.vars["txn.token_cost"], b.vars["txn.token_verdict"], b.vars["txn.token_retry_after"])
local c = txn({["txn.api_client"] = "team-b"}, body)
H.haproxy_action(c, "7"); emit(c.vars["txn.token_cost"])
""" % json.dumps(str(SCRIPT)))
    assert out[0] == ["llmfleet_token_budget", "http-req", 1]
    assert out[1] == [45, None]
    assert out[2][:2] == [45, "over"] and out[2][2] >= 1
    assert out[3] == [None]
