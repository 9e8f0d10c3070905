"""Government data the citizen need not bring: the data-sharing exchange and the e-certificate library."""
