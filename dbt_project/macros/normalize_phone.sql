{#-
    Phone number -> E.164 ('+86' and 11 digits) for mainland China mobiles, else null.

    Sources type phones as '+86 138 0013 8000', '13800138000', '0086-138-0013-8000', '+8613800138000',
    '138-0013-8000' or '86 13800138000'. We keep the digits and accept exactly three shapes: the bare
    11-digit mobile (starts with 1), 86 + mobile, 0086 + mobile. A number written with '+' must carry
    +86, so '+1 415 555 0100' (11 digits starting with 1) is not read as a Chinese mobile.
    Landlines, foreign numbers and garbage become null: a wrong key would merge different people, a
    missing one only fails to merge.
-#}
{% macro normalize_phone(phone_column) -%}
    {%- set digits = strip_non_digits(phone_column) -%}
    case
        when length({{ digits }}) = 11 and {{ digits }} like '1%' and trim({{ phone_column }}) not like '+%'
            then '+86' || {{ digits }}
        when length({{ digits }}) = 13 and {{ digits }} like '861%'
            then '+' || {{ digits }}
        when length({{ digits }}) = 15 and {{ digits }} like '00861%' and trim({{ phone_column }}) not like '+%'
            then '+' || substr({{ digits }}, 3)
    end
{%- endmacro %}
