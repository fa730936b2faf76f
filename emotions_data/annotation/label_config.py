"""The Label Studio labelling interface, generated from the taxonomy so any label set works.

``annotation/label_configs/<taxonomy>.xml`` is the generated file for the bundled taxonomy (a
test checks it is current); projects are always created from :func:`label_config`.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from emotions_data.schema.resources import ANNOTATION_DIR
from emotions_data.schema.taxonomy import Taxonomy

#: Names of the control and object tags; ``pull`` reads the choice of ``FROM_NAME``.
FROM_NAME = "emotion"
TO_NAME = "video"
#: Task data keys ``push`` always writes.
DATA_VIDEO, DATA_VIDEO_ID = "video", "video_id"


def label_config(taxonomy: Taxonomy) -> str:
    """A single-choice video classification interface over the taxonomy's classes, in order."""
    hotkeys = "1234567890qwertyuiop"
    choices = "\n".join(
        f"    <Choice value={quoteattr(c)}"
        + (f' hotkey="{hotkeys[i]}"' if i < len(hotkeys) else "")
        + "/>"
        for i, c in enumerate(taxonomy.classes)
    )
    return (
        "<View>\n"
        f'  <Header value="Video $video_id: which emotion does it evoke? ({taxonomy.name})"/>\n'
        f'  <Video name="{TO_NAME}" value="${DATA_VIDEO}"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single-radio" required="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def label_config_path(taxonomy: Taxonomy) -> str:
    return str(ANNOTATION_DIR / "label_configs" / f"{taxonomy.name}.xml")
