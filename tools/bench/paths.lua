-- wrk script: each request takes a random path from the file named by PATHS_FILE.
local paths = {}
for line in io.lines(os.getenv("PATHS_FILE")) do
  if #line > 0 then paths[#paths + 1] = line end
end
math.randomseed(7)
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
