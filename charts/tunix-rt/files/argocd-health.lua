-- Argo CD health of a tunix-rt Sweep or Rehearsal (tunixrt.io/v1alpha1), from the status
-- the operator writes. Register it for both kinds in argocd-cm as
--   resource.customizations.health.tunixrt.io_Sweep
--   resource.customizations.health.tunixrt.io_Rehearsal
-- (docs/kubernetes.md, "Argo CD health"). Failed -> Degraded, Succeeded -> Healthy,
-- queued (its RayJob suspended, e.g. by Kueue) -> Suspended, otherwise Progressing.
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the tunix-rt operator to pick it up"
  return hs
end

local function condition(kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local queued_reasons = { RayJobSuspended = true, Queued = true }
local phase = status.phase
local progressing = condition("Progressing")
if phase == "Failed" then
  hs.status = "Degraded"
elseif phase == "Succeeded" then
  hs.status = "Healthy"
elseif progressing ~= nil and queued_reasons[progressing.reason] then
  hs.status = "Suspended"
else
  hs.status = "Progressing"
end
hs.message = status.message or phase
if hs.message == "" then
  hs.message = phase
end
return hs
