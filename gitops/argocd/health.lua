-- Argo CD health check for secureml.io/SecureMLWorkspace (the same verdicts kstatus gives Flux).
-- Installed in argocd-cm as resource.customizations.health.secureml.io_SecureMLWorkspace;
-- gitops/argocd/argocd-cm.yaml embeds this file verbatim (a unit test keeps them equal).
local hs = {}
local metadata = obj.metadata or {}
local status = obj.status or {}

-- The operator's finalizer is removing (or, with deletionPolicy Retain, releasing) Azure resources.
if metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "deleting: the operator is cleaning up Azure as spec.deletionPolicy says"
  return hs
end

-- Conditions written for an older spec say nothing about the current one.
local generation = metadata.generation
local observed = status.observedGeneration
if observed == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to reconcile generation " .. tostring(generation or "?")
  return hs
end
if generation ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to reconcile generation " .. tostring(generation) ..
    " (status is for generation " .. tostring(observed) .. ")"
  return hs
end

local conditions = {}
if type(status.conditions) == "table" then
  for _, condition in ipairs(status.conditions) do
    if condition.type ~= nil then
      conditions[condition.type] = condition
    end
  end
end

local function describe(condition)
  local reason = condition.reason or ""
  local message = condition.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  return reason .. message
end

-- Stalled: retrying cannot help (a registry that is not Premium, a workspace owned by another
-- resource, bad credentials...); the spec or Azure access must change first.
local stalled = conditions["Stalled"]
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

local ready = conditions["Ready"]
-- Another writer keeps changing Azure back and the operator stopped fighting it: a person must
-- make them agree (kstatus has no verdict for this: Flux reads the resource as Current).
if ready ~= nil and ready.status == "False" and ready.reason == "ConflictingWriter" then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

-- Still converging, or retrying a transient Azure failure with backoff.
hs.status = "Progressing"
local reconciling = conditions["Reconciling"]
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling)
elseif ready ~= nil then
  hs.message = describe(ready)
else
  hs.message = "waiting for the operator to report Ready"
end
return hs
