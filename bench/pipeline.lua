-- wrk script: keep DEPTH requests in flight per connection (HTTP/1.1 pipelining).
-- Usage: wrk -t1 -c50 -d8s -s bench/pipeline.lua URL -- 16
--
-- wrk sends whatever request() returns in one write and, having parsed that
-- buffer once at start-up, expects as many responses as it holds requests
-- before writing again; so a batch of DEPTH concatenated requests is a
-- pipeline of depth DEPTH, and wrk's own response count stays right.
-- (The benchmark counts requests at nginx anyway.)

local batch

function init(args)
   local depth = tonumber(args[1]) or 16
   local requests = {}
   for i = 1, depth do
      requests[i] = wrk.format()   -- the command line's method, path and headers
   end
   batch = table.concat(requests)
end

function request()
   return batch
end
