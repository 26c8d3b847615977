"""Calibration text for GPTQ / AWQ: a user file, or a small built-in medical sample that needs no network.

GPTQ and AWQ fit each layer's quantization to activations seen on sample text. Published
recipes download C4 or WikiText; offline we default to the short clinical paragraphs below
(written for this package). For a real 7B quantization pass a few hundred in-domain samples
(for instance PMC abstracts prepared by the training package) with --calibration.
"""
from __future__ import annotations

import json
from pathlib import Path

from model_ops import ModelOpsError

BUILTIN = [
    "A 54-year-old woman presents with fatigue, weight gain and cold intolerance. Her TSH is elevated "
    "and free T4 is low, consistent with primary hypothyroidism; levothyroxine is started at a low dose.",
    "Acute myocardial infarction typically presents with crushing retrosternal chest pain radiating to the "
    "left arm, diaphoresis and nausea. ST elevation on the electrocardiogram calls for urgent reperfusion.",
    "The kidney regulates fluid balance, electrolytes and acid-base status. Loop diuretics act on the thick "
    "ascending limb of the loop of Henle and can cause hypokalemia and metabolic alkalosis.",
    "Type 2 diabetes mellitus results from insulin resistance and progressive beta-cell failure. Metformin "
    "lowers hepatic glucose production and is the usual first-line drug unless contraindicated.",
    "Community-acquired pneumonia in adults is most often caused by Streptococcus pneumoniae. Severity scores "
    "such as CURB-65 help decide between outpatient treatment and hospital admission.",
    "The brachial plexus is formed by the ventral rami of C5 to T1. Injury to the upper trunk produces "
    "Erb palsy, with the arm adducted, internally rotated and the forearm pronated.",
    "Warfarin inhibits vitamin K epoxide reductase, reducing synthesis of factors II, VII, IX and X. Its effect "
    "is monitored with the international normalized ratio and reversed with vitamin K and prothrombin complex.",
    "Cystic fibrosis is an autosomal recessive disease caused by mutations in the CFTR chloride channel, "
    "leading to thick secretions, recurrent lung infections and pancreatic insufficiency.",
    "Iron deficiency anemia is microcytic and hypochromic, with low ferritin and high total iron binding "
    "capacity. In older adults, occult gastrointestinal blood loss must be excluded.",
    "Randomized controlled trials assign participants to interventions by chance, which balances known and "
    "unknown confounders; intention-to-treat analysis preserves the benefit of randomization.",
    "Mitochondria produce ATP through oxidative phosphorylation. Electrons pass along the respiratory chain "
    "while protons are pumped across the inner membrane, driving ATP synthase.",
    "Sepsis is life-threatening organ dysfunction caused by a dysregulated host response to infection. Early "
    "antibiotics, fluid resuscitation and source control reduce mortality.",
    "Asthma is characterized by reversible airflow obstruction and airway hyperresponsiveness. Inhaled "
    "corticosteroids are the cornerstone of long-term control.",
    "Stroke presenting within the treatment window may benefit from intravenous thrombolysis after "
    "hemorrhage is excluded by computed tomography of the head.",
    "Does preoperative anemia increase the risk of complications after hip fracture surgery? In this cohort, "
    "patients with anemia had longer stays and higher thirty-day mortality.",
    "Question: Which enzyme is deficient in phenylketonuria? (A) tyrosinase (B) phenylalanine hydroxylase "
    "(C) homogentisate oxidase (D) fumarylacetoacetase. Answer: (B)",
]


def load_calibration(path: str | Path | None = None, limit: int | None = None) -> list[str]:
    """Samples from a .txt (blank-line separated paragraphs), .jsonl ({"text": ...} per line)
    or .json (list of strings) file; the built-in sample when path is None."""
    if path is None:
        samples = list(BUILTIN)
    else:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ModelOpsError(f"{path}: not UTF-8 (byte {err.start}); re-save it as UTF-8") from None
        if path.suffix == ".jsonl":
            samples = []
            for lineno, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ModelOpsError(f"{path}:{lineno}: not JSON ({err.msg})") from None
                if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                    raise ModelOpsError(f"{path}:{lineno}: field 'text' (a string) is required")
                samples.append(row["text"])
        elif path.suffix == ".json":
            try:
                samples = json.loads(text)
            except json.JSONDecodeError as err:
                raise ModelOpsError(f"{path}:{err.lineno}: not JSON ({err.msg})") from None
            if not isinstance(samples, list) or not all(isinstance(s, str) for s in samples):
                raise ModelOpsError(f"{path}: expected a JSON list of strings")
        else:
            samples = [p.strip() for p in text.split("\n\n") if p.strip()]
    if not samples:
        raise ModelOpsError(f"{path}: no calibration samples found")
    return samples[:limit] if limit else samples
