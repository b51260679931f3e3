"""The imperative shell: kopf handlers that gather cluster state, call podline.core, and apply its actions."""
