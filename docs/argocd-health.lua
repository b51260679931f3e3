-- Argo CD health check for podline.dev/Pipeline (see docs/gitops.md for how to install it).
-- A Pipeline is Healthy once its current run Succeeded (or was Skipped: a build's pipeline that its
-- dependencies' outcome rules out), Degraded if it Failed, errored or was Cancelled, and Progressing while
-- it is queued, waits for the pipelines it depends on, or runs, or while its status is about an older spec.
-- tests/chart/test_gitops.py runs this file with lua5.4 against the statuses the operator writes.
local health = { status = "Progressing", message = "waiting for the podline operator to start a run" }
local status = obj.status
if status == nil or status.phase == nil then
  return health
end

-- A changed spec starts a new run; until the operator has seen it, the phase is the old run's.
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration ~= generation then
  health.message = "waiting for the run of generation " .. string.format("%d", generation)
  return health
end

local phase = status.phase
if phase == "Succeeded" or phase == "Skipped" then
  health.status = "Healthy"
elseif phase == "Failed" or phase == "Error" or phase == "Cancelled" then
  health.status = "Degraded"
else
  health.status = "Progressing"  -- Pending (queued, waiting for dependencies, creating the pod) or Running
end
health.message = phase
if status.message ~= nil and status.message ~= "" then
  health.message = phase .. ": " .. status.message
end
return health
