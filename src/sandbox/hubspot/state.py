"""The in-memory HubSpot portal: deal and task stores, property validation, associations and owners.

Each store's dict keeps records in ``hs_lastmodifieddate`` order (a write moves the record to the end) while
the clock only moves forward, so search sorted by modification date needs no sort. When a search lag is
configured, earlier versions are kept (for that long) so lagged search can show what it saw before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime

from sandbox.clock import SandboxClock
from sandbox.hubspot import history
from sandbox.hubspot.associations import AssociationStore
from sandbox.hubspot.errors import HsError, not_found
from sandbox.hubspot.properties import (
    PropertyDef,
    PropertyValueError,
    epoch_ms,
    invalid_properties,
    iso_millis,
    normalize,
)
from sandbox.hubspot.schema import CLOSED_STAGES, CREATED, MODIFIED, PIPELINE_ID, deal_registry, task_registry
from sandbox.hubspot.store import HsObject, ObjectStore, Props
from sandbox.hubspot.webhooks import Attempt, WebhookDispatcher, WebhookSubscription

OBJECT_TYPES = ("deals", "tasks")
ALIASES = {
    "deals": "deals",
    "deal": "deals",
    "0-3": "deals",
    "tasks": "tasks",
    "task": "tasks",
    "0-27": "tasks",
}
_FIRST_ID = {"deals": 10_000_000_001, "tasks": 20_000_000_001}
_MAX_HISTORY = 16


class HubSpotState:
    def __init__(
        self, clock: SandboxClock, bare: bool = False, owners: Iterable[Mapping[str, object]] = ()
    ) -> None:
        self.lock = threading.RLock()
        self._clock = clock
        self.owners: list[dict[str, object]] = [dict(o) for o in owners]
        owner_ids = tuple(str(o["id"]) for o in self.owners)
        self.stores = {
            "deals": ObjectStore("deals", deal_registry(bare, owner_ids)),
            "tasks": ObjectStore("tasks", task_registry(bare, owner_ids)),
        }
        self.associations = AssociationStore(self._stored_id)
        self.search_lag_s = 0.0
        self.history_horizon_s = 0.0
        self._next = dict(_FIRST_ID)
        self.deleted_properties: dict[tuple[str, str], tuple[PropertyDef, dict[str, str | None]]] = {}
        """Deleted (archived) properties and their values by (object type, name), for `restore_property`."""
        self.webhooks: WebhookDispatcher | None = None
        """The app's webhook deliveries (sandbox.hubspot.webhooks), told of every deal created or changed."""

    # ----- the Python API -----------------------------------------------------------------------------------
    def deals(self) -> list[dict[str, object]]:
        return self._dump("deals")

    def tasks(self) -> list[dict[str, object]]:
        return self._dump("tasks")

    def get_deal(self, deal_id: str) -> dict[str, object] | None:
        with self.lock:
            obj = self.stores["deals"].objects.get(deal_id)
            return self._plain("deals", obj) if obj is not None else None

    def update_deal(
        self, deal_id: str, properties: Mapping[str, object], by_user: int | None = None
    ) -> dict[str, object]:
        """A user editing the deal in HubSpot: validated like an API write, bumps hs_lastmodifieddate and
        sets hs_updated_by_user_id to the user (`by_user`; by default the deal owner's user)."""
        with self.lock:
            obj = self.update("deals", deal_id, properties, source=history.CRM_UI, user_id=by_user)
            return self._plain("deals", obj)

    def create_deal(self, properties: Mapping[str, object], by_user: int | None = None) -> dict[str, object]:
        """A user creating a deal in HubSpot (validated like an API write); its id is in the result."""
        with self.lock:
            obj = self.create("deals", properties, source=history.CRM_UI, user_id=by_user)
            return self._plain("deals", obj)

    # ----- webhooks (the app's subscriptions; see sandbox.hubspot.webhooks) -----------------------------
    def subscribe_webhooks(self, subscription: WebhookSubscription) -> None:
        """Set the app's webhook target and subscriptions; deal changes from now on are delivered."""
        self._dispatcher().subscribe(subscription)

    def flush_webhooks(self, timeout: float = 10.0) -> None:
        """Wait until every webhook event so far was delivered or given up (AssertionError after
        `timeout` seconds), so a test needs no sleep."""
        if not self._dispatcher().flush(timeout):
            raise AssertionError(f"webhook deliveries still pending after {timeout} s")

    def webhook_attempts(self) -> list[Attempt]:
        """Every webhook request sent so far (event ids, attempt number, the answer's status)."""
        return self._dispatcher().attempts()

    def _dispatcher(self) -> WebhookDispatcher:
        if self.webhooks is None:
            raise RuntimeError("this HubSpot state has no webhook dispatcher (made outside a Sandbox)")
        return self.webhooks

    def _owner_user(self, obj: HsObject) -> int | None:
        owner = obj.properties.get("hubspot_owner_id")
        for entry in self.owners:
            user = entry.get("userId")
            if str(entry.get("id")) == owner and isinstance(user, int):
                return user
        return None

    def forget_history(self, object_type: str, object_id: str, name: str) -> None:
        """HubSpot holds no history for this property's current value (written by a data migration, or its
        history dropped): `propertiesWithHistory` gives it no entries, its value stays."""
        with self.lock:
            obj = self.store(object_type).objects.get(object_id)
            if obj is None:
                raise KeyError(f"{object_type} has no record {object_id}")
            history.forget(obj, name, _ms(self._clock.now()))

    def delete_property(self, object_type: str, name: str) -> None:
        """Schema drift: the property's definition and values vanish from every API. HubSpot moves an
        archived property to a recycling bin it can be restored from (CRM properties API, "Archive a
        property"): `restore_property` brings it back with its values."""
        with self.lock:
            store = self.store(object_type)
            prop = store.registry.properties.pop(name, None)
            if prop is None:
                raise KeyError(f"{object_type} has no property {name}")
            values = {obj.id: obj.properties.pop(name, None) for obj in store.objects.values()}
            self.deleted_properties[(store.type, name)] = (prop, values)
            store.reindex()

    def restore_property(self, object_type: str, name: str) -> None:
        """Restore a deleted property with the values it had; records keep their hs_lastmodifieddate."""
        with self.lock:
            store = self.store(object_type)
            key = (store.type, name)
            if key not in self.deleted_properties:
                raise KeyError(f"{object_type} has no deleted property {name}")
            if name in store.registry.properties:
                raise KeyError(f"{object_type} has a property {name} again; delete it before restoring")
            prop, values = self.deleted_properties.pop(key)
            store.registry.add(prop)
            for obj in store.objects.values():
                if values.get(obj.id) is not None:
                    obj.properties[name] = values[obj.id]
            store.reindex()

    def rename_property(self, object_type: str, old: str, new: str) -> None:
        with self.lock:
            store = self.store(object_type)
            prop = store.registry.properties.pop(old, None)
            if prop is None:
                raise KeyError(f"{object_type} has no property {old}")
            store.registry.add(type(prop)(**{**prop.__dict__, "name": new}))
            for obj in store.objects.values():
                obj.properties[new] = obj.properties.pop(old, None)
                history.rename(obj, old, new)
            store.reindex()

    def set_search_lag(self, seconds: float) -> None:
        with self.lock:
            self.search_lag_s = max(0.0, seconds)
            self.note_lag(seconds)

    def note_lag(self, seconds: float) -> None:
        """Keep earlier versions for at least ``seconds`` from now on (search lag may ask for them)."""
        self.history_horizon_s = max(self.history_horizon_s, seconds)

    # ----- the write path (callers hold ``lock``) -----------------------------------------------------------
    def store(self, object_type: str) -> ObjectStore:
        canonical = ALIASES.get(object_type)
        if canonical is None:
            raise HsError("OBJECT_NOT_FOUND", f"Unable to infer object type from: {object_type}", status=400)
        return self.stores[canonical]

    def check_values(self, object_type: str, raw: Mapping[str, object]) -> None:
        """Property names, writability and value formats only: what fails a whole batch with 400."""
        errors = self._normalize(self.store(object_type), raw, {})
        if errors:
            raise invalid_properties(errors)

    def prepare(self, object_type: str, raw: Mapping[str, object], current: HsObject | None) -> Props:
        store = self.store(object_type)
        out: Props = {}
        errors = self._normalize(store, raw, out)
        if current is None and store.type == "tasks" and not out.get("hs_timestamp"):
            errors.append(PropertyValueError("hs_timestamp", "REQUIRED_PROPERTY", "hs_timestamp is required"))
        if errors:
            raise invalid_properties(errors)
        for name, value in out.items():
            if value is not None and store.registry.properties[name].has_unique_value:
                holder = store.by_unique(name, value)
                if holder is not None and (current is None or holder.id != current.id):
                    raise HsError(
                        "CONFLICT",
                        f"A {store.type[:-1]} with {name}={value} already exists: {holder.id}",
                        context={"ids": [holder.id]},
                    )
        return out

    @staticmethod
    def _normalize(store: ObjectStore, raw: Mapping[str, object], out: Props) -> list[PropertyValueError]:
        errors: list[PropertyValueError] = []
        for name, value in raw.items():
            prop = store.registry.properties.get(name)
            try:
                if prop is None:
                    raise PropertyValueError(
                        name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
                    )
                if prop.read_only:
                    raise PropertyValueError(
                        name, "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.'
                    )
                out[prop.name] = normalize(prop, value)
            except PropertyValueError as exc:
                errors.append(exc)
        return errors

    def create(
        self,
        object_type: str,
        raw: Mapping[str, object],
        stamp: datetime | None = None,
        source: str = history.API,
        user_id: int | None = None,
    ) -> HsObject:
        """A new record; `source` (API, or CRM_UI for a person, with `user_id`) is what webhooks report."""
        store = self.store(object_type)
        values = self.prepare(store.type, raw, None)
        now = stamp or self._clock.now()
        num = self._next[store.type]
        self._next[store.type] = num + 1
        obj = HsObject(str(num), num, {}, now, now, _ms(now))
        obj.properties = self._derive(store.type, obj, values, created=True)
        store.put(obj, new=True)
        if self.webhooks is not None and store.type == "deals":
            if source == history.CRM_UI and user_id is None:
                user_id = self._owner_user(obj)
            self.webhooks.created(obj.id, now, source, user_id)
        return obj

    def update(
        self,
        object_type: str,
        object_id: str,
        raw: Mapping[str, object],
        stamp: datetime | None = None,
        source: str = history.API,
        user_id: int | None = None,
    ) -> HsObject:
        """Change a record's properties; each value it changes is kept in the property's history as set by
        `source` (HubSpot's sourceType: API for an API write, CRM_UI for a person in HubSpot). A person's
        edit (CRM_UI) names its user in hs_updated_by_user_id (`user_id`, else the owner's user)."""
        store = self.store(object_type)
        current = store.objects.get(object_id)
        if current is None:
            raise not_found(object_id)
        values = self.prepare(store.type, raw, current)
        now = stamp or self._clock.now()
        obj = store.take(object_id)
        if self.history_horizon_s > 0:
            if obj.history is None:
                obj.history = []
            obj.history.append((obj.modstamp_ms, dict(obj.properties)))
            horizon = _ms(now) - int(self.history_horizon_s * 1000)
            while len(obj.history) > 1 and (obj.history[1][0] <= horizon or len(obj.history) > _MAX_HISTORY):
                obj.history.pop(0)
        obj.updated_at, obj.modstamp_ms = now, _ms(now)
        before = obj.properties
        obj.properties = self._derive(store.type, obj, {**before, **values}, created=False)
        if source == history.CRM_UI and store.type == "deals":
            user_id = user_id if user_id is not None else self._owner_user(obj)
            if user_id is not None:
                obj.properties["hs_updated_by_user_id"] = str(user_id)
        history.record(obj, before, obj.modstamp_ms, source, user_id)
        store.put(obj, new=False)
        if self.webhooks is not None and store.type == "deals":
            self.webhooks.property_changes(obj.id, before, obj.properties, now, source, user_id)
        return obj

    def archive(self, object_type: str, object_id: str) -> None:
        store = self.store(object_type)
        if object_id not in store.objects:
            raise not_found(object_id)
        store.remove(object_id)
        self.associations.remove_object(store.type, object_id)

    def insert_seed(self, object_type: str, objects: Iterable[HsObject]) -> None:
        with self.lock:
            store = self.stores[object_type]
            for obj in objects:
                store.objects[obj.id] = obj
                self._next[object_type] = max(self._next[object_type], obj.num + 1)
            store.ordered = all(
                a.modstamp_ms <= b.modstamp_ms
                for a, b in zip(store.objects.values(), list(store.objects.values())[1:], strict=False)
            )
            store.reindex()

    def new_id(self, object_type: str) -> int:
        num = self._next[object_type]
        self._next[object_type] = num + 1
        return num

    def clear(self) -> None:
        with self.lock:
            for store in self.stores.values():
                store.objects.clear()
                store.ordered = True
                store.reindex()
            self.associations.clear()
            self._next = dict(_FIRST_ID)

    # ----- internals ----------------------------------------------------------------------------------------
    def _stored_id(self, object_type: str, object_id: str) -> str:
        """The stored record's own id string for an id read from a request (the same text), so an
        association shares it instead of keeping a copy (57,000 links at 100,000 deals)."""
        store = self.stores.get(ALIASES.get(object_type, object_type))
        found = store.objects.get(object_id) if store is not None else None
        return found.id if found is not None else object_id

    @staticmethod
    def _derive(object_type: str, obj: HsObject, values: Props, *, created: bool) -> Props:
        out = dict(values)
        out["hs_object_id"] = obj.id
        modified = out[MODIFIED] = iso_millis(obj.updated_at)
        if created:
            same = obj.created_at == obj.updated_at
            out[CREATED[object_type]] = modified if same else iso_millis(obj.created_at)
        if object_type == "deals":
            out.setdefault("pipeline", PIPELINE_ID)
            if out.get("pipeline") is None:
                out["pipeline"] = PIPELINE_ID
            stage = out.get("dealstage")
            out["hs_is_closed"] = "true" if stage in CLOSED_STAGES else "false"
            out["hs_is_closed_won"] = "true" if stage == "closedwon" else "false"
        elif created and out.get("hs_task_status") is None:
            out["hs_task_status"] = "NOT_STARTED"
        return out

    def _plain(self, object_type: str, obj: HsObject) -> dict[str, object]:
        links = {
            other: [target for target, _ in self.associations.targets(object_type, obj.id, other)]
            for other in OBJECT_TYPES
            if other != object_type
        }
        return {
            "id": obj.id,
            "properties": dict(obj.properties),
            "createdAt": iso_millis(obj.created_at),
            "updatedAt": iso_millis(obj.updated_at),
            "associations": {k: v for k, v in links.items() if v},
        }

    def _dump(self, object_type: str) -> list[dict[str, object]]:
        with self.lock:
            store = self.stores[object_type]
            ordered = sorted(store.objects.values(), key=lambda o: o.num)
            return [self._plain(object_type, obj) for obj in ordered]


def _ms(moment: datetime) -> int:
    return epoch_ms(moment)
