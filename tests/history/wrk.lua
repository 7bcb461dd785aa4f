-- The bench's read load for wrk (tests/history/bench.py): the paths of WRK_PATHS (a file, one a
-- line) in turn, each with the bearer token WRK_TOKEN; at the end one JSON line of the latency
-- percentiles (ms), the requests and each status's count.
local paths, token = {}, os.getenv("WRK_TOKEN")
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end

local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end

n, statuses = 0, {}  -- globals: done() reads each thread's statuses with thread:get
function request()
  n = n % #paths + 1
  return wrk.format("GET", paths[n], { ["Authorization"] = "Bearer " .. token })
end

function response(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency)
  local counts = {}
  for _, t in ipairs(threads) do
    for status, count in pairs(t:get("statuses")) do counts[status] = (counts[status] or 0) + count end
  end
  local parts = {}
  for status, count in pairs(counts) do parts[#parts + 1] = string.format('"%d":%d', status, count) end
  io.write(string.format(
    '{"p50_ms":%.1f,"p99_ms":%.1f,"max_ms":%.1f,"requests":%d,"seconds":%.2f,"socket_errors":%d,"status":{%s}}\n',
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000, summary.requests,
    summary.duration / 1e6, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout, table.concat(parts, ",")))
end
