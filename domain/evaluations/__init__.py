"""好差评 (国办发〔2019〕51号): one rating per completed case, rectification of every 差评."""
