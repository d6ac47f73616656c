"""What every engine shares: the segments' laws and the customers' traits (:mod:`~sim.model.population`), the
policy compiled into arrays and dates (:mod:`~sim.model.program`), the firm's scoring
(:mod:`~sim.model.scoring`), the calendar (:mod:`~sim.model.calendar`), the acquisition plan
(:mod:`~sim.model.acquisition`) and the closed forms of the textbook models (:mod:`~sim.model.theory`).
"""
