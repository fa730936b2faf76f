"""``croissant.json``: MLCommons Croissant 1.0 metadata with the Responsible-AI (RAI) fields.

One ``cr:FileObject`` per data file (with its sha256) and one ``cr:RecordSet`` per variant and
split; the RAI texts are the dataset card's (``card.texts``), built from the manifests.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa

from emotions_data.release.card import ReleaseInfo

CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
RAI_CONFORMS_TO = "http://mlcommons.org/croissant/RAI/1.0"

#: The JSON-LD context of the Croissant 1.0 specification (with the RAI prefix).
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}


def _data_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_integer(arrow_type):
        return "sc:Integer"
    if pa.types.is_floating(arrow_type):
        return "sc:Float"
    if pa.types.is_boolean(arrow_type):
        return "sc:Boolean"
    return "sc:Text"


def _bibkey(name: str) -> str:
    return "".join(ch for ch in name if ch.isalnum()) or "dataset"


def croissant(
    info: ReleaseInfo,
    texts: dict[str, str],
    files: dict[str, dict[str, str]],
    sha256: dict[str, str],
    schema: pa.Schema,
    *,
    description: str,
    stages: list[str],
    date_range: tuple[str, str] | None,
    sources: str = "",
) -> dict[str, Any]:
    """The Croissant JSON-LD document for a release folder (paths relative to it)."""
    distribution: list[dict[str, Any]] = []
    record_sets: list[dict[str, Any]] = []
    descriptions = {
        "video_id": "Stable id of the video: <platform>-<native id> or sha256(url)[:16].",
        "source_url": "Where the video was downloaded from (may be dead: see hydrate).",
        "sha256": "sha256 of the original media file, to verify a re-download.",
        "label": "Final emotion class.",
        "split": "train, val or test.",
        "fold": "Cross-validation fold where the split has folds.",
    }
    for variant, splits in files.items():
        for split, path in splits.items():
            file_id = path
            distribution.append(
                {
                    "@type": "cr:FileObject",
                    "@id": file_id,
                    "name": file_id,
                    "description": f"Variant {variant}, split {split}.",
                    "contentUrl": path,
                    "encodingFormat": "application/x-parquet",
                    "sha256": sha256[path],
                }
            )
            rs_id = f"{variant}_{split}"
            record_sets.append(
                {
                    "@type": "cr:RecordSet",
                    "@id": rs_id,
                    "name": rs_id,
                    "description": f"Videos of variant {variant}, split {split}.",
                    "key": {"@id": f"{rs_id}/video_id"},
                    "field": [
                        {
                            "@type": "cr:Field",
                            "@id": f"{rs_id}/{f.name}",
                            "name": f"{rs_id}/{f.name}",
                            "description": descriptions.get(f.name, f.name.replace("_", " ")),
                            "dataType": _data_type(f.type),
                            "source": {
                                "fileObject": {"@id": file_id},
                                "extract": {"column": f.name},
                            },
                        }
                        for f in schema
                    ],
                }
            )
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": [CONFORMS_TO, RAI_CONFORMS_TO],
        "name": info.name,
        "description": description,
        "license": info.license,
        # schema.org's field for what governs access to the content: the platforms' terms
        "conditionsOfAccess": texts["platform_terms"],
        "url": info.homepage or "https://example.invalid/" + info.name,
        "version": info.version,
        "datePublished": dt.date.today().isoformat(),
        "citeAs": (
            f"@misc{{{_bibkey(info.name)}, title = {{{info.name}}}, "
            f"note = {{version {info.version}}}, year = {{{dt.date.today().year}}}}}"
        ),
        "keywords": ["emotion recognition", "short video", "audio-visual"],
        "isLiveDataset": False,
        "distribution": distribution,
        "recordSet": record_sets,
        "rai:dataCollection": texts["collection"],
        "rai:dataCollectionType": ["Web Scraping", "Manual Human Curation"],
        "rai:dataCollectionMissingData": (
            "Failed downloads, filtered and duplicate videos are left out; see the funnel in "
            "the dataset card. Dead links after release are reported by `emotions-data hydrate`."
        ),
        "rai:dataCollectionRawData": "Short videos from the platforms, referenced by URL and sha256.",
        "rai:dataPreprocessingProtocol": [
            "ffprobe checks, duration and audio filters, exact and near-duplicate removal "
            "(perceptual hashes), normalisation to h264/aac."
        ],
        "rai:dataAnnotationProtocol": [texts["annotation_protocol"]],
        "rai:dataAnnotationPlatform": [
            "Label Studio (open source), one project per stage and group"
            + (f"; judgements by source: {sources}" if sources else "")
        ],
        "rai:dataAnnotationAnalysis": [texts["agreement"]],
        "rai:annotationsPerItem": texts["annotators_per_item"],
        "rai:annotatorDemographics": [
            "Annotators were profiled on work experience, emotional-intelligence (MSCEIT) score, "
            "education, cultural background and leadership to form balanced groups; individual "
            "demographics are not released."
        ],
        "rai:dataUseCases": [texts["uses"]],
        "rai:dataBiases": [texts["limitations"]],
        "rai:dataLimitations": [texts["limitations"]],
        "rai:dataSocialImpact": (
            "Emotion recognition can be misused to profile people; the dataset card lists the "
            "out-of-scope uses."
        ),
        "rai:personalSensitiveInformation": [texts["personal_information"]],
        "rai:dataReleaseMaintenancePlan": [texts["maintenance"]],
    }
    if date_range is not None:
        doc["rai:dataCollectionTimeframe"] = list(date_range)
    if stages:
        doc["rai:dataAnnotationProtocol"].append("Stages: " + ", ".join(stages) + ".")
    return doc
