"""Generated events -> the store's Arrow tables (events, traits, account links).

Events are ordered per user in time and numbered, which gives deterministic message ids
`demo-<seed>-<user>-<n>`: unique by construction, the same for the same seed. Traits and
account links come from the identify and group events, exactly as `store.rows.to_rows`
derives them from messages, but column-wise.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segmently.demo import parts as k
from segmently.demo import population as P
from segmently.demo import strings as s
from segmently.demo import vocabulary as v
from segmently.demo.parts import KINDS, EventPart
from segmently.demo.population import Population
from segmently.store import schema
from segmently.store.rows import ARROW_SCHEMAS, RowBatch

OS_NAMES = ("macOS", "Windows", "Linux", "iOS")
TIMEZONES = ("America/Los_Angeles", "America/New_York", "Europe/London", "Europe/Berlin",
             "Europe/Athens", "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo",
             "America/Sao_Paulo", "Australia/Sydney", "America/Chicago", "Europe/Moscow")


def _from_codes(codes: np.ndarray, values: list[str]) -> pa.Array:
    return pa.DictionaryArray.from_arrays(codes.astype(np.int32), pa.array(values)).cast(
        pa.string())


def _timestamps(us: np.ndarray) -> pa.Array:
    return pa.array(us, pa.int64()).cast(pa.timestamp("us"))


class Ids:
    """Per-user and per-account string columns, built once per chunk and taken per row."""

    def __init__(self, pop: Population) -> None:
        u, a = pop.users, pop.accounts
        self.user = s.ident("usr_", u.first + np.arange(u.n), 7)
        self.account = s.ident("acc_", a.first + np.arange(a.n), 6)
        self.user_account = self.account.take(pa.array(u.account))
        device = u.device
        self.context = s.concat(
            f'{{"library":{{"name":"{v.LIBRARY}","version":"1.0"}},"os":{{"name":"',
            s.pick(OS_NAMES, device % 4), '"},"timezone":"', s.pick(TIMEZONES, device), '"}')


def assemble(project_id: str, pop: Population, part: EventPart, seed: int,
             start_us: int, rng: np.random.Generator) -> RowBatch:
    order = np.lexsort((part.kind, part.ts, part.user))
    user, kind, arg = part.user[order], part.kind[order], part.arg[order]
    ts_us = start_us + np.round(part.ts[order] * 1e6).astype(np.int64)
    delay = np.clip(rng.lognormal(np.log(0.3), 1.0, len(order)), 0.02, 30.0)
    rcv_us = ts_us + np.round(delay * 1e6).astype(np.int64)
    count = np.bincount(user, minlength=pop.users.n)
    seq = np.arange(len(order)) - np.repeat(np.cumsum(count) - count, count)
    ids = Ids(pop)
    uidx = pa.array(user)
    message_id = s.concat(f"demo-{seed}-", s.num(pop.users.first + user), "-", s.num(seq))
    n = len(order)
    events = pa.Table.from_arrays([
        s.const(project_id, n), message_id, _from_codes(kind, [t for t, _ in KINDS]),
        _from_codes(kind, [e for _, e in KINDS]), ids.user.take(uidx), pa.nulls(n, pa.string()),
        ids.user_account.take(uidx), _timestamps(ts_us), _timestamps(rcv_us),
        part.properties.take(pa.array(order)), ids.context.take(uidx), s.const(v.SOURCE, n),
    ], schema=ARROW_SCHEMAS[schema.EVENTS])
    rows = _Rows(project_id, pop, ids, user, kind, arg, events)
    return RowBatch(events=events, traits=rows.traits(), identities=_empty(schema.IDENTITIES),
                    account_links=rows.account_links())


def _iso(ts: pa.ChunkedArray) -> pa.Array:
    return pc.strftime(ts.combine_chunks(), "%Y-%m-%dT%H:%M:%SZ")


def _empty(name: str) -> pa.Table:
    return ARROW_SCHEMAS[name].empty_table()


class _Rows:
    """Traits and account links of the identify and group events of one chunk."""

    def __init__(self, project_id: str, pop: Population, ids: Ids, user: np.ndarray,
                 kind: np.ndarray, arg: np.ndarray, events: pa.Table) -> None:
        self.project_id, self.pop, self.ids = project_id, pop, ids
        self.user, self.kind, self.arg, self.events = user, kind, arg, events

    def _rows(self, code: int) -> tuple[np.ndarray, pa.Table]:
        where = np.flatnonzero(self.kind == code)
        return where, self.events.take(pa.array(where))

    def traits(self) -> pa.Table:
        u, a = self.pop.users, self.pop.accounts
        tables = []
        where, ev = self._rows(k.IDENTIFY_SIGNUP)
        who = self.user[where]
        acc = u.account[who]
        tables.append(self._traits(ev, "user", ev["user_id"], self._user_traits(who, acc, ev)))
        where, ev = self._rows(k.IDENTIFY_PLAN)
        plan = s.quoted(s.pick(v.PLANS, self.arg[where]))
        tables.append(self._traits(ev, "user", ev["user_id"], {"plan": plan}))
        where, ev = self._rows(k.GROUP_CREATE)
        acc = u.account[self.user[where]]
        tables.append(self._traits(ev, "account", ev["account_id"], self._account_traits(acc, ev)))
        where, ev = self._rows(k.GROUP_PLAN)
        acc, code = u.account[self.user[where]], self.arg[where]
        mrr = np.where((code >= 1) & (code <= 3), a.mrr[acc], 0)
        tables.append(self._traits(ev, "account", ev["account_id"],
                                   {"plan": s.quoted(s.pick(v.PLANS, code)), "mrr": s.num(mrr)}))
        return pa.concat_tables(tables)

    def _user_traits(self, who: np.ndarray, acc: np.ndarray, ev: pa.Table
                     ) -> dict[str, pa.Array]:
        u, a = self.pop.users, self.pop.accounts
        first = s.pick(P.FIRST_NAMES, u.first_name[who])
        last = s.pick(P.LAST_NAMES, u.last_name[who])
        domain = s.concat(s.pick(P.NAME_WORDS, a.name_word[acc]),
                          s.pick(P.NAME_SUFFIXES, a.name_suffix[acc]), "-",
                          s.num(a.first + acc), ".example")
        converted = np.nan_to_num(a.converted_at[acc], nan=np.inf)
        plan = np.where(u.signup[who] >= converted, a.tier[acc] + 1, P.PLAN_TRIAL)
        return {
            "email": s.quoted(s.concat(first, ".", last, "@", domain)),
            "name": s.quoted(s.concat(pc.utf8_capitalize(first), " ", pc.utf8_capitalize(last))),
            "role": s.quoted(s.pick(v.ROLES, u.role[who])),
            "plan": s.quoted(s.pick(v.PLANS, plan)),
            "created_at": s.quoted(_iso(ev["timestamp"])),
            "account_id": s.quoted(self.ids.account.take(pa.array(acc))),
        }

    def _account_traits(self, acc: np.ndarray, ev: pa.Table) -> dict[str, pa.Array]:
        a = self.pop.accounts
        name = s.concat(pc.utf8_capitalize(s.pick(P.NAME_WORDS, a.name_word[acc])), " ",
                        pc.utf8_capitalize(s.pick(P.NAME_SUFFIXES, a.name_suffix[acc])))
        return {
            "name": s.quoted(name), "plan": s.quoted(s.const(v.TRIAL, len(acc))),
            "industry": s.quoted(s.pick(v.INDUSTRIES, a.industry[acc])),
            "seats": s.num(a.size[acc]), "mrr": s.num(np.zeros(len(acc))),
            "created_at": s.quoted(_iso(ev["timestamp"])),
        }

    def _traits(self, ev: pa.Table, kind: str, entity: pa.ChunkedArray,
                values: dict[str, pa.Array]) -> pa.Table:
        n = ev.num_rows
        cols: dict[str, list[pa.Array]] = {name: [] for name in ARROW_SCHEMAS[schema.TRAITS].names}
        for trait, value in values.items():
            cols["project_id"].append(s.const(self.project_id, n))
            cols["kind"].append(s.const(kind, n))
            cols["entity_id"].append(entity.combine_chunks())
            cols["trait"].append(s.const(trait, n))
            cols["value"].append(value.cast(pa.string()))
            cols["once"].append(pa.array(np.zeros(n, bool)))
            cols["set_at"].append(ev["timestamp"].combine_chunks())
            cols["received_at"].append(ev["received_at"].combine_chunks())
            cols["message_id"].append(ev["message_id"].combine_chunks())
        sch = ARROW_SCHEMAS[schema.TRAITS]
        if not values or n == 0:
            return sch.empty_table()
        return pa.Table.from_arrays([pa.concat_arrays(cols[f]) for f in sch.names], schema=sch)

    def account_links(self) -> pa.Table:
        where = np.flatnonzero(np.isin(self.kind, (k.GROUP_CREATE, k.GROUP_JOIN, k.GROUP_PLAN)))
        ev = self.events.take(pa.array(where))
        return pa.table({"project_id": ev["project_id"], "user_id": ev["user_id"],
                         "account_id": ev["account_id"], "linked_at": ev["timestamp"],
                         "received_at": ev["received_at"], "message_id": ev["message_id"]},
                        schema=ARROW_SCHEMAS[schema.ACCOUNT_LINKS])
