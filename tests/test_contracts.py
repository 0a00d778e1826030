from loyalist.config import PROJECT_ROOT
from loyalist.contracts import ENTITIES, contract_markdown


def test_input_contract_doc_is_generated_from_code():
    doc = (PROJECT_ROOT / "docs" / "input_contract.md").read_text(encoding="utf-8")
    assert doc.strip() == contract_markdown().strip(), "run `loyalist contract --write`"


def test_every_entity_has_a_business_key_made_of_its_columns():
    for entity in ENTITIES.values():
        assert set(entity.key) <= set(entity.column_names), entity.name
