"""The Azure Policy definitions and benchmark items the PGW-AZ rules map to.

Display names and definition names (GUIDs) are those of ``Azure/azure-policy``'s
``built-in-policies/policyDefinitions``; CIS Azure items are those Microsoft's own
regulatory compliance initiatives assign to the same definitions.
"""

from __future__ import annotations


def azure_policy(display_name: str, name: str) -> str:
    """A ``frameworks`` entry for a built-in Azure Policy definition."""
    return f"Azure Policy: {display_name} ({name})"


CIS_AZURE_V3_DEFENDER_OSS = "CIS Microsoft Azure Foundations Benchmark v3.0.0 3.1.7.2"
CIS_AZURE_V2_DEFENDER_OSS = "CIS Microsoft Azure Foundations Benchmark v2.0.0 2.1.6"
CIS_AZURE_V2_RESOURCE_LOGS = "CIS Microsoft Azure Foundations Benchmark v2.0.0 5.4"
