"""`convintel topics edit MODEL rename|merge|split|delete`: curate a topic model. Each
edit is checked before anything is written; a bad one ends with exit status 2 and the
model folder unchanged. Edits are saved with the model (manifest.json and
topics.safetensors) and redone by `convintel topics fit --previous`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nlp.errors import EncoderLoadError, TopicModelError
from service.cli.main import fail, load_settings
from service.cli.topics import topics_app

if TYPE_CHECKING:  # the edit models import numpy and spaCy-backed modules: loaded inside the commands
    from nlp.topics.edits import DeleteEdit, Members, MergeEdit, RenameEdit, SplitEdit
    from nlp.topics.model import TopicModel

edit_app = typer.Typer(no_args_is_help=True, help="Curate a topic model: rename, merge, split or delete topics.")
topics_app.add_typer(edit_app, name="edit")


@edit_app.callback()
def edit_model(
    ctx: typer.Context,
    model: Annotated[Path, typer.Argument(help="Topic model folder from 'convintel topics fit'")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the edited model here (default: in place)")
    ] = None,
) -> None:
    """Edit the topic model in MODEL (saved in place unless --output is given)."""
    ctx.obj = (model, output or model)


def _apply(
    ctx: typer.Context,
    edit: Callable[[], RenameEdit | MergeEdit | SplitEdit | DeleteEdit],
    members_for: Callable[[TopicModel, SplitEdit], Members | None] | None = None,
) -> None:
    """Load, validate and apply `edit`, save, and print the result; any problem is one
    error line and exit status 2 with nothing written."""
    from pydantic import ValidationError

    from nlp.topics import load_topic_model
    from nlp.topics.edits import SplitEdit, TopicEditError, apply_edit
    from nlp.topics.model import describe

    model_dir, output = ctx.obj
    try:
        model = load_topic_model(model_dir)
        parsed = edit()
        members = members_for(model, parsed) if members_for and isinstance(parsed, SplitEdit) else None
        edited = apply_edit(model, parsed, members=members)
    except ValidationError as exc:
        fail("; ".join(f"{'.'.join(map(str, e['loc'])) or 'edit'}: {e['msg']}" for e in exc.errors()))
    except (TopicModelError, TopicEditError, EncoderLoadError) as exc:
        fail(str(exc))
    try:
        edited.save(output)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    typer.echo(describe(edited.manifest))
    typer.echo(f"wrote {output}")


@edit_app.command("rename")
def edit_rename(
    ctx: typer.Context,
    topic: Annotated[int, typer.Argument(help="Topic id")],
    name: Annotated[str, typer.Argument(help="New name (kept by refits)")],
) -> None:
    """Rename a topic."""
    from nlp.topics.edits import RenameEdit

    _apply(ctx, lambda: RenameEdit(topic=topic, name=name))


@edit_app.command("merge")
def edit_merge(
    ctx: typer.Context,
    topics: Annotated[list[int], typer.Argument(help="Topic ids; the first keeps its id")],
    name: Annotated[str | None, typer.Option(help="Name of the merged topic (default: the first's)")] = None,
) -> None:
    """Merge two or more topics into the first."""
    from nlp.topics.edits import MergeEdit

    _apply(ctx, lambda: MergeEdit(topics=topics, name=name))


@edit_app.command("delete")
def edit_delete(ctx: typer.Context, topic: Annotated[int, typer.Argument(help="Topic id")]) -> None:
    """Delete a topic: its messages stay unassigned (in refits too)."""
    from nlp.topics.edits import DeleteEdit

    _apply(ctx, lambda: DeleteEdit(topic=topic))


@edit_app.command("split")
def edit_split(
    ctx: typer.Context,
    topic: Annotated[int, typer.Argument(help="Topic id")],
    source: Annotated[
        Path,
        typer.Option("--source", help="Archive whose messages of this topic are re-clustered (as for 'topics fit')"),
    ],
    parts: Annotated[int, typer.Option(help="Number of topics to split it into")] = 2,
    text_field: Annotated[str, typer.Option(help="Field (or CSV column) holding the message text")] = "text",
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache, as for 'topics fit'")] = None,
) -> None:
    """Split a topic by re-clustering its messages in an archive (k-means, seeded)."""
    from nlp.archive import ArchiveError
    from nlp.encoder import Encoder
    from nlp.topics.edits import SplitEdit
    from training.topic_fit import topic_members

    def members_for(model: TopicModel, edit: SplitEdit) -> Members | None:
        if model.index_of(edit.topic) is None:
            return None  # apply_edit names the unknown topic; no need to read the archive
        settings = load_settings()
        encoder = Encoder(
            settings.encoder_path, batch_size=settings.encode_batch_size, num_threads=settings.torch_threads
        )
        try:
            return topic_members(model, edit.topic, source, encoder, text_field=text_field, cache_dir=cache_dir)
        except ArchiveError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"cannot read {exc.filename}: {exc.strerror}")

    _apply(ctx, lambda: SplitEdit(topic=topic, parts=parts), members_for)
