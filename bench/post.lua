-- wrk script: a chat request (or a plain GET), one JSON line of results in done().
-- Environment:
--   BENCH_METHOD        POST (default) or GET (no body: the fixed-response ceiling)
--   BENCH_BODY          the JSON body of a POST
--   BENCH_HEADERS       more request headers, one "Name: value" a line (anthropic-version)
--   BENCH_STREAM_BODY   with BENCH_STREAM_EVERY=k, every k-th request sends this body instead
--                       (a "stream": true request: the memory phase's mixed load)
--   BENCH_LIMIT         stop after this many responses (the duration is then only a bound);
--                       use one thread (-t1): the count is per thread
local method = os.getenv("BENCH_METHOD") or "POST"
local every = tonumber(os.getenv("BENCH_STREAM_EVERY") or "0")
local limit = tonumber(os.getenv("BENCH_LIMIT") or "0")

wrk.method = method
wrk.headers["Authorization"] = "Bearer sk-bench"
for name, value in string.gmatch(os.getenv("BENCH_HEADERS") or "", "([^:\n]+):%s*([^\n]*)") do
  wrk.headers[name] = value
end
if method == "POST" then
  wrk.body = os.getenv("BENCH_BODY")
    or '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello bench"}]}'
  wrk.headers["Content-Type"] = "application/json"
end

if every > 0 then
  local plain, stream, sent = nil, nil, 0
  function init(args)
    plain = wrk.format()
    stream = wrk.format(nil, nil, nil, os.getenv("BENCH_STREAM_BODY"))
  end
  function request()
    sent = sent + 1
    if sent % every == 0 then return stream end
    return plain
  end
end

if limit > 0 then
  local seen = 0
  function response(status, headers, body)
    seen = seen + 1
    if seen == limit then
      wrk.thread:stop()
      -- wrk's main thread sleeps for the whole -d; a SIGINT ends that sleep and wrk
      -- reports. The shell's parent is wrk itself; the kill comes a moment later, in the
      -- background, because system() ignores SIGINT in wrk until the shell has exited.
      os.execute("(sleep 0.05; kill -INT $PPID) >/dev/null 2>&1 &")
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,' ..
    '"p99_ms":%.3f,"max_ms":%.3f,"non_2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, summary.requests / summary.duration * 1e6,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, e.status,
    e.connect + e.read + e.write + e.timeout))
end
