"""Use cases of boards and departments: named groups a workspace files tasks and agents in."""

from __future__ import annotations

from typing import Any

from application.commands import Commands, Kind, Written
from application.ids import new_id
from application.ports import EventStore
from application.task_views import definition_view
from application.tenancy import Principal
from domain.boards import Board, Department

DEPARTMENTS: Kind[Department] = Kind(Department, "dept", "department")
BOARDS: Kind[Board] = Kind(Board, "board", "board")


def render_department(department: Department) -> dict[str, Any]:
    return definition_view(
        "department", department.department_id, department.definition, department.created_on, department.modified_on, department.archived_at
    )


def render_board(board: Board) -> dict[str, Any]:
    return definition_view("board", board.board_id, board.definition, board.created_on, board.modified_on, board.archived_at)


def _given(fields: dict[str, Any]) -> dict[str, Any]:
    """A create's fields without the nulls (the defaults stand for them)."""
    return {name: value for name, value in fields.items() if value is not None}


def _cleared(changes: dict[str, Any], **empty: Any) -> dict[str, Any]:
    """An update's nulls: what clearing each of ``empty``'s fields leaves."""
    return {name: empty[name] if value is None and name in empty else value for name, value in changes.items()}


class DepartmentService:
    def __init__(self, store: EventStore) -> None:
        self._commands = Commands(store, DEPARTMENTS, render_department)

    def create(self, who: Principal, fields: dict[str, Any]) -> Written:
        definition = {"description": None, "emoji": None, "sort_order": 0, "metadata": {}, **_given(fields)}
        return self._commands.create(
            Department(department_id=new_id("dept"), tenant_id=who.tenant_id, definition=definition)
        )

    def retrieve(self, who: Principal, department_id: str) -> dict[str, Any]:
        return self._commands.view(who, department_id)

    def update(self, who: Principal, department_id: str, changes: dict[str, Any]) -> Written:
        changes = _cleared(changes, sort_order=0, metadata={})
        return self._commands.change(who, department_id, lambda department: department.update(changes))

    def archive(self, who: Principal, department_id: str) -> Written:
        return self._commands.change(who, department_id, Department.archive)

    def check_live(self, who: Principal, department_id: str) -> None:
        """A department a board or an agent may name: the caller's, not archived."""
        self._commands.check_live(who, department_id)


class BoardService:
    def __init__(self, store: EventStore, departments: DepartmentService) -> None:
        self._commands = Commands(store, BOARDS, render_board)
        self._departments = departments

    def create(self, who: Principal, fields: dict[str, Any]) -> Written:
        if fields.get("department_id"):
            self._departments.check_live(who, fields["department_id"])
        definition = {"description": None, "department_id": None, "metadata": {}, **_given(fields)}
        return self._commands.create(Board(board_id=new_id("board"), tenant_id=who.tenant_id, definition=definition))

    def retrieve(self, who: Principal, board_id: str) -> dict[str, Any]:
        return self._commands.view(who, board_id)

    def update(self, who: Principal, board_id: str, changes: dict[str, Any]) -> Written:
        if changes.get("department_id"):
            self._departments.check_live(who, changes["department_id"])
        changes = _cleared(changes, metadata={})
        return self._commands.change(who, board_id, lambda board: board.update(changes))

    def archive(self, who: Principal, board_id: str) -> Written:
        return self._commands.change(who, board_id, Board.archive)

    def check_live(self, who: Principal, board_id: str) -> None:
        """A board a task may be filed on: the caller's, not archived."""
        self._commands.check_live(who, board_id)


class Placements:
    """The departments and boards an agent may name (``agents.Placement``)."""

    def __init__(self, departments: DepartmentService, boards: BoardService) -> None:
        self.check_department = departments.check_live
        self.check_board = boards.check_live
